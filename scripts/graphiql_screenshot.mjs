// Drives GraphiQL in headless Chromium: opens the page with the API key in the URL fragment,
// runs the default query, checks that data came back, and saves a screenshot.
// Arguments: the /graphql URL, an API key, the local mirror of the unpkg files, the PNG to write.
import { createRequire } from "node:module";
import { readFile } from "node:fs/promises";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_PATH, "noop.js"));
const { chromium } = require("playwright-core");
const [url, key, mirror, out] = process.argv.slice(2);

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  // Answer the CDN's requests from the mirror (same bytes, so the integrity checks still pass).
  await page.route("https://unpkg.com/**", async (route) => {
    const file = path.join(mirror, decodeURIComponent(new URL(route.request().url()).pathname));
    const type = file.endsWith(".css") ? "text/css" : "application/javascript";
    await route.fulfill({ body: await readFile(file), contentType: type, headers: { "Access-Control-Allow-Origin": "*" } });
  });
  await page.goto(`${url}#key=${key}`);
  await page.locator(".graphiql-execute-button").click({ timeout: 30_000 });
  const result = page.locator(".result-window");
  await result.getByText('"workspace"').waitFor({ timeout: 30_000 });
  const text = await result.innerText();
  if (text.includes('"errors"')) throw new Error(`the query failed:\n${text}`);
  if (page.url().includes("key=")) throw new Error("the key stayed in the address bar");
  await page.screenshot({ path: out });
  console.log(`GraphiQL ran the query; screenshot in ${out}`);
  console.log(text.slice(0, 400));
} finally {
  await browser.close();
}
