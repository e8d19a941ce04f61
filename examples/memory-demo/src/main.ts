import { tour } from "./tour.js";

for (const line of await tour()) console.log(line);
