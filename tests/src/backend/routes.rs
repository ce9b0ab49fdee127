//! Starlette-style routing: an ordered table of path templates (`/api/v1/events/{event_id}`), matched
//! against the percent-decoded path segment by segment, the first route matching path and method
//! winning, a path-only match giving 405, nothing giving 404.
//!
//! The table is the real backend's: FastAPI's own documentation routes first, then every path of
//! ArgusAI's `openapi.json` in its order, then the WebSocket routes (which only match WebSocket
//! handshakes). Without the file, a built-in table of the routes the stand-in implements is used.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Param(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub template: String,
    segs: Vec<Seg>,
    /// Upper-case methods, sorted.
    pub methods: Vec<String>,
    pub websocket: bool,
}

pub(crate) type Params = Vec<(String, String)>;

pub(crate) enum Match<'a> {
    Full(&'a Route, Params),
    /// The path matched a route, not the method: 405 with this route's methods.
    Partial(&'a Route),
    None,
}

impl Route {
    pub(crate) fn new(template: &str, methods: &[&str], websocket: bool) -> Route {
        let segs = template
            .split('/')
            .skip(1)
            .map(|s| {
                if s.len() >= 2 && s.starts_with('{') && s.ends_with('}') {
                    let name = &s[1..s.len() - 1];
                    Seg::Param(name.split(':').next().unwrap_or(name).to_owned())
                } else {
                    Seg::Lit(s.to_owned())
                }
            })
            .collect();
        let mut methods: Vec<String> = methods.iter().map(|m| m.to_ascii_uppercase()).collect();
        methods.sort();
        methods.dedup();
        Route {
            template: template.to_owned(),
            segs,
            methods,
            websocket,
        }
    }

    fn match_path(&self, path: &str) -> Option<Params> {
        if !path.starts_with('/') {
            return None;
        }
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        if parts.len() != self.segs.len() {
            return None;
        }
        let mut params = Vec::new();
        for (seg, part) in self.segs.iter().zip(parts) {
            match seg {
                Seg::Lit(l) if l == part => {}
                Seg::Lit(_) => return None,
                // Starlette's default `str` convertor: `[^/]+`.
                Seg::Param(_) if part.is_empty() => return None,
                Seg::Param(name) => params.push((name.clone(), part.to_owned())),
            }
        }
        Some(params)
    }
}

/// Finds the route for a request. `websocket` requests only see WebSocket routes and HTTP requests
/// only HTTP ones, like Starlette's `scope["type"]` check.
pub(crate) fn find<'a>(
    routes: &'a [Route],
    path: &str,
    method: &str,
    websocket: bool,
) -> Match<'a> {
    let mut partial = None;
    for r in routes.iter().filter(|r| r.websocket == websocket) {
        if let Some(params) = r.match_path(path) {
            if websocket || r.methods.iter().any(|m| m == method) {
                return Match::Full(r, params);
            }
            if partial.is_none() {
                partial = Some(r);
            }
        }
    }
    match partial {
        Some(r) => Match::Partial(r),
        None => Match::None,
    }
}

/// FastAPI's documentation routes (plain Starlette routes: GET and HEAD).
fn docs_routes() -> Vec<Route> {
    ["/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"]
        .iter()
        .map(|p| Route::new(p, &["GET", "HEAD"], false))
        .collect()
}

fn websocket_routes() -> Vec<Route> {
    vec![
        Route::new("/ws", &[], true),
        Route::new("/ws/stream/{camera_id}", &[], true),
        Route::new("/api/v1/cameras/{camera_id}/stream", &[], true),
    ]
}

/// The routes the stand-in implements, with the methods the real backend has on them.
pub(crate) fn builtin_routes() -> Vec<Route> {
    let mut routes = docs_routes();
    let table: &[(&str, &[&str])] = &[
        ("/api/v1/events", &["GET", "POST"]),
        ("/api/v1/events/{event_id}", &["GET", "DELETE"]),
        ("/api/v1/events/{event_id}/frames", &["GET"]),
        ("/api/v1/events/{event_id}/frames/{frame_number}", &["GET"]),
        ("/api/v1/events/{event_id}/video", &["GET"]),
        ("/api/v1/events/{event_id}/thumbnail", &["GET"]),
        ("/api/v1/metrics", &["GET"]),
        ("/api/v1/cameras", &["GET", "POST"]),
        ("/api/v1/cameras/{camera_id}", &["GET", "PUT", "DELETE"]),
        ("/api/v1/devices", &["GET", "POST"]),
        ("/api/v1/devices/{device_id}", &["DELETE"]),
        ("/api/v1/devices/{device_id}/token", &["PUT"]),
        ("/api/v1/devices/{device_id}/preferences", &["PUT"]),
        ("/api/v1/devices/{id}", &["PUT"]),
        ("/api/v1/system/ai-processing-stream", &["GET"]),
        ("/api/v1/system/backup", &["POST"]),
        ("/api/v1/system/backup/{timestamp}/download", &["GET"]),
        ("/api/v1/system/restore", &["POST"]),
        ("/api/v1/system/backup/{timestamp}", &["DELETE"]),
        ("/api/v1/thumbnails/{date}/{filename}", &["GET"]),
        ("/api/v1/auth/login", &["POST"]),
        ("/api/v1/auth/refresh", &["POST"]),
        ("/api/v1/auth/me", &["GET"]),
        ("/", &["GET"]),
        ("/health", &["GET"]),
        ("/metrics", &["GET"]),
    ];
    for (t, m) in table {
        routes.push(Route::new(t, m, false));
    }
    routes.extend(websocket_routes());
    routes
}

/// The real route table from ArgusAI's `openapi.json`; `None` when it can't be read.
pub(crate) fn routes_from_openapi(bytes: &[u8]) -> Option<Vec<Route>> {
    // The order of `paths` is FastAPI's registration order, which matters (e.g.
    // `/api/v1/events/export` before `/api/v1/events/{event_id}`); serde_json's own map is sorted,
    // so the document is read with a visitor that keeps it.
    let doc: OpenApiPaths = serde_json::from_slice(bytes).ok()?;
    let mut routes = docs_routes();
    for (path, ops) in doc.paths.0 {
        let methods: Vec<&str> = ops
            .iter()
            .map(String::as_str)
            .filter(|m| {
                matches!(
                    *m,
                    "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
                )
            })
            .collect();
        routes.push(Route::new(&path, &methods, false));
    }
    routes.extend(websocket_routes());
    Some(routes)
}

#[derive(serde::Deserialize)]
struct OpenApiPaths {
    paths: OrderedPaths,
}

/// `paths` in document order: each path with the keys of its operations object.
struct OrderedPaths(Vec<(String, Vec<String>)>);

impl<'de> serde::Deserialize<'de> for OrderedPaths {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedPaths;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an OpenAPI paths object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedPaths, A::Error> {
                let mut out = Vec::new();
                while let Some(path) = map.next_key::<String>()? {
                    let ops: std::collections::BTreeMap<String, serde::de::IgnoredAny> =
                        map.next_value()?;
                    out.push((path, ops.into_keys().collect()));
                }
                Ok(OrderedPaths(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_starlette() {
        let routes = builtin_routes();
        match find(&routes, "/api/v1/thumbnails/../app.db", "GET", false) {
            Match::Full(r, p) => {
                assert_eq!(r.template, "/api/v1/thumbnails/{date}/{filename}");
                assert_eq!(
                    p,
                    vec![
                        ("date".into(), "..".into()),
                        ("filename".into(), "app.db".into())
                    ]
                );
            }
            _ => panic!("thumbnail route"),
        }
        assert!(matches!(
            find(&routes, "/api/v1/events/", "GET", false),
            Match::None
        ));
        assert!(matches!(
            find(&routes, "/api/v1/events", "PUT", false),
            Match::Partial(_)
        ));
        assert!(matches!(find(&routes, "/ws", "GET", false), Match::None));
        assert!(matches!(find(&routes, "/ws", "GET", true), Match::Full(..)));
        assert!(matches!(
            find(&routes, "/api/v1/thumbnails/a/b/c", "GET", false),
            Match::None
        ));
    }
}
