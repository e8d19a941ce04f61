const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for HTML content and quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

export interface PageModel {
  csrf: string;
  name: string | undefined;
  pinLastDigit: string | undefined;
  user: string | undefined;
  activeSessions: number;
  notice: string | undefined;
}

const form = (action: string, csrf: string, body: string, label: string) =>
  `<form method="post" action="${action}"><input type="hidden" name="_csrf" value="${escapeHtml(csrf)}">${body}<button type="submit">${label}</button></form>`;

/** The one page of the demo. Every value from the session or the user is escaped. */
export function page(m: PageModel): string {
  const e = escapeHtml;
  const parts: string[] = [];
  if (m.notice) parts.push(`<p role="status" id="notice">${e(m.notice)}</p>`);
  if (m.name !== undefined && m.pinLastDigit !== undefined)
    parts.push(
      `<p id="profile">Name: <strong id="name">${e(m.name)}</strong>, PIN: <code id="pin">•••${e(m.pinLastDigit)}</code></p>`,
    );
  if (m.user !== undefined) {
    parts.push(
      `<p id="who">Logged in as <strong>${e(m.user)}</strong> (${m.activeSessions} active session${m.activeSessions === 1 ? "" : "s"}).</p>`,
      form("/logout", m.csrf, "", "Log out"),
      form("/logout-everywhere", m.csrf, "", "Log out everywhere"),
    );
  } else {
    parts.push(
      `<p id="who">Not logged in.</p>`,
      form(
        "/profile",
        m.csrf,
        `<label>Name <input name="name" maxlength="40" required value="${e(m.name ?? "")}"></label> <label>PIN <input name="pin" inputmode="numeric" pattern="[0-9]{4}" maxlength="4" required autocomplete="off"></label> `,
        "Save",
      ),
    );
    if (m.name !== undefined) parts.push(form("/login", m.csrf, "", "Log in"));
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kvsession PIN demo</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}form{margin:.5rem 0}</style>
</head><body>
<h1>kvsession PIN demo</h1>
<p>Your browser holds only an opaque, signed session ID (HttpOnly, invisible to scripts). The name and PIN live in the session store on the server.</p>
${parts.join("\n")}
</body></html>
`;
}
