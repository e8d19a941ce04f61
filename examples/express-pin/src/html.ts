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
  user: string | undefined;
  activeSessions: number;
  notice: string | undefined;
  /** The display name kept in the session, if any. */
  name?: string | undefined;
}

const form = (action: string, csrf: string, body: string, label: string) =>
  `<form method="post" action="${action}"><input type="hidden" name="_csrf" value="${escapeHtml(csrf)}">${body}<button type="submit">${label}</button></form>`;

/** The one page of the demo. Every value from the session or the user is escaped. */
export function page(m: PageModel): string {
  const e = escapeHtml;
  const parts: string[] = [];
  if (m.notice) parts.push(`<p role="status" id="notice">${e(m.notice)}</p>`);
  if (m.name !== undefined) parts.push(`<p>Display name: <strong id="name">${e(m.name)}</strong></p>`);
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
        "/login",
        m.csrf,
        `<label>Name <input name="name" maxlength="40" required autocomplete="username"></label> <label>PIN <input name="pin" type="password" inputmode="numeric" pattern="[0-9]{4}" maxlength="4" required autocomplete="current-password"></label> `,
        "Log in",
      ),
    );
  }
  // After the login form, so the page's first "name" field stays the login's.
  parts.push(
    form(
      "/profile",
      m.csrf,
      `<label>Display name <input name="name" maxlength="40" value="${e(m.name ?? "")}"></label> `,
      "Save",
    ),
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kvsession PIN demo</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}form{margin:.5rem 0}</style>
</head><body>
<h1>kvsession PIN demo</h1>
<p>Your browser holds only an opaque, signed session ID (HttpOnly, invisible to scripts). The session, on the server, holds who you are logged in as — never your PIN, which is kept only as a salted scrypt hash. The first login of a name registers its PIN.</p>
${parts.join("\n")}
</body></html>
`;
}
