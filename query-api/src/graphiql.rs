//! The GraphiQL page served to browsers on `GET /graphql`.
//!
//! Its scripts are pinned npm releases, loaded from `assets` (by default `https://unpkg.com`;
//! any server laid out as `<package>@<version>/<path>` will do, for networks without the CDN)
//! and checked with Subresource Integrity, so a tampered file is refused by the browser.
//!
//! The API key goes in GraphiQL's Headers tab, or in the URL fragment as `#key=ffk_…`: a fragment
//! never leaves the browser, and the page moves it into the headers and removes it from the
//! address bar.

/// `(path under the asset base, SRI hash)` of each pinned file.
const REACT: (&str, &str) = (
    "react@18.3.1/umd/react.production.min.js",
    "sha384-DGyLxAyjq0f9SPpVevD6IgztCFlnMF6oW/XQGmfe+IsZ8TqEiDrcHkMLKI6fiB/Z",
);
const REACT_DOM: (&str, &str) = (
    "react-dom@18.3.1/umd/react-dom.production.min.js",
    "sha384-gTGxhz21lVGYNMcdJOyq01Edg0jhn/c22nsx0kyqP0TxaV5WVdsSH1fSDUf5YJj1",
);
const GRAPHIQL_JS: (&str, &str) =
    ("graphiql@3.8.3/graphiql.min.js", "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie");
const GRAPHIQL_CSS: (&str, &str) =
    ("graphiql@3.8.3/graphiql.min.css", "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM");

/// Where GraphiQL's files come from unless configured otherwise.
pub const DEFAULT_ASSETS: &str = "https://unpkg.com";

/// The page, loading its files from `assets`.
pub fn page(assets: &str) -> String {
    let base = assets.trim_end_matches('/');
    let script = |(path, hash): (&str, &str)| {
        format!(r#"<script src="{base}/{path}" integrity="{hash}" crossorigin="anonymous"></script>"#)
    };
    let (css, css_hash) = GRAPHIQL_CSS;
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>FlowFuse GraphQL</title>
  <style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
  <link rel="stylesheet" href="{base}/{css}" integrity="{css_hash}" crossorigin="anonymous">
  {react}
  {react_dom}
  {graphiql}
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script>
    const fragment = new URLSearchParams(location.hash.slice(1));
    const key = fragment.get("key");
    if (key) history.replaceState(null, "", location.pathname + location.search);
    const headers = key ? JSON.stringify({{ Authorization: "Bearer " + key }}, null, 2) : undefined;
    const fetcher = GraphiQL.createFetcher({{ url: location.pathname }});
    const defaultQuery = "# The API key goes in the Headers tab:\n#   {{\"Authorization\": \"Bearer ffk_…\"}}\n{{\n  workspace {{ name plan }}\n  workflows(first: 10) {{ edges {{ node {{ name status version updatedAt }} }} }}\n}}\n";
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {{ fetcher, headers, defaultQuery, shouldPersistHeaders: false, isHeadersEditorEnabled: true }})
    );
  </script>
</body>
</html>
"##,
        react = script(REACT),
        react_dom = script(REACT_DOM),
        graphiql = script(GRAPHIQL_JS),
    )
}
