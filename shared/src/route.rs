//! Who serves what: [`classify`] maps a method and a *decoded, canonical* path (see
//! [`crate::path`]) to the party that answers it on a remote listener.
//!
//! Classification is fixed in code; the policy ([`crate::policy`]) is the final, configurable
//! path gate applied after it. A path that is [`Route::Refused`] here is never served remotely,
//! whatever the policy says.
//!
//! # Matching
//! Exact, case-sensitive (Starlette routes are case-sensitive), segment by segment on the decoded
//! path. One trailing `/` is ignored (`/metrics/` is `/metrics`; FastAPI would only redirect it).
//! Methods are the upper-case RFC 9110 set `GET HEAD POST PUT PATCH DELETE OPTIONS`; anything else
//! (`TRACE`, `CONNECT`, `get`, custom verbs) is [`Route::MethodNotAllowed`]. Refusal is decided
//! before the method is looked at, so a refused path never answers 405 (that would reveal it).
//! Paths the relay itself owns answer only their listed methods (no implicit `HEAD`).
//!
//! # Served by the agent, no device token ([`Route::Public`])
//! | method | path | route |
//! |---|---|---|
//! | POST | `/api/v1/devices/pair` | [`PublicRoute::PairCode`] |
//! | POST | `/api/v1/mobile/auth/pair` | [`PublicRoute::MobilePair`] |
//! | GET | `/api/v1/mobile/auth/status/{code}` | [`PublicRoute::MobileStatus`] |
//! | POST | `/api/v1/mobile/auth/exchange` | [`PublicRoute::MobileExchange`] |
//! | POST | `/api/v1/mobile/auth/refresh` | [`PublicRoute::MobileRefresh`] |
//! | GET | `/.well-known/jwks.json` | [`PublicRoute::Jwks`] |
//! | GET | `/.well-known/ohttp-keys` | [`PublicRoute::OhttpKeys`] |
//! | GET | `/api/v1/health` | [`PublicRoute::Health`] |
//!
//! # Served by the agent, device token required ([`Route::Agent`])
//! | method | path | route |
//! |---|---|---|
//! | GET | `/api/v1/devices` | [`AgentRoute::DevicesList`] |
//! | DELETE | `/api/v1/devices/{id}` | [`AgentRoute::DeviceDelete`] |
//! | PUT | `/api/v1/devices/{id}/rename` | [`AgentRoute::DeviceRename`] |
//! | POST | `/api/v1/mobile/auth/revoke` | [`AgentRoute::MobileRevoke`] |
//! | GET | `/api/v1/relay/status` | [`AgentRoute::RelayStatus`] |
//! | POST | `/api/v1/relay/sealed` | [`AgentRoute::Sealed`] (an Oblivious HTTP request, [`crate::sealed`]) |
//!
//! # `/api/v1/devices`: shared between the agent and the backend
//! ArgusAI uses `/api/v1/devices` for push-notification registration (openapi.json, tag
//! `devices`). The split, by method and path:
//!
//! | method | path | goes to | why |
//! |---|---|---|---|
//! | GET | `/api/v1/devices` | agent | the relay's paired devices (shadows ArgusAI's push-device list) |
//! | POST | `/api/v1/devices` | backend | push registration (APNS/FCM token upsert) |
//! | POST | `/api/v1/devices/pair` | agent (public) | relay pairing |
//! | DELETE | `/api/v1/devices/inactive` | backend | ArgusAI's cleanup of stale push devices (the policy denies it by default) |
//! | DELETE | `/api/v1/devices/{id}` | agent | revoke a relay device (shadows ArgusAI's push-device delete) |
//! | PUT | `/api/v1/devices/{id}` | backend | rename / update a push device |
//! | PUT | `/api/v1/devices/{id}/rename` | agent | rename a relay device |
//! | PUT | `/api/v1/devices/{id}/token` | backend | APNS/FCM token refresh |
//! | PUT | `/api/v1/devices/{id}/preferences` | backend | quiet hours etc. |
//! | any other method on those paths | | 405 | |
//! | deeper paths | | backend | the backend answers 404; the policy gates first |
//!
//! Consequence: ArgusAI's own `GET /api/v1/devices` and `DELETE /api/v1/devices/{device_id}` are
//! not reachable remotely (relay device ids are agent-generated and never `inactive` or `pair`).
//!
//! # `/api/v1/mobile/auth/*`: owned by the agent
//! The phone authenticates to the relay, not to ArgusAI: the agent answers the ArgusAI-compatible
//! pairing flow itself (`pair`, `status/{code}`, `exchange`, `refresh`, `revoke`) with relay
//! tokens. ArgusAI's `confirm`, `pending` and `pending/{code}` confirm or list pairings *as a
//! logged-in ArgusAI user*; on the relay the owner confirms a pairing on the agent's admin
//! listener, so they are refused remotely.
//!
//! # Refused ([`Route::Refused`], reason codes)
//! | reason | paths | why |
//! |---|---|---|
//! | `route.system_tunnel` | `/api/v1/system/tunnel/**` | ArgusAI's own tunnel start/stop: a phone could cut or rewire the very path it uses |
//!
//! The rest of `/api/v1/system/**` (settings, AI keys, SMTP, backup download and restore — the
//! whole database —, data deletion, the AI-processing feeds) is *routed* to the backend; the
//! agent serves it to owner-scoped devices only, and the policy (`DEFAULT_DENY`) refuses every
//! change and every read of secrets or the database by default; an owner who wants backups from
//! the phone lifts it in the policy. By default only the AI-processing stream is allowed.
//! | `route.backend_credentials` | `/api/v1/auth/**`, `/api/v1/api-keys/**`, `/api/v1/users/**`, `/api/v1/mobile/auth/**` except the agent's | these mint or manage ArgusAI credentials. Remote requests reach ArgusAI with the *agent's* credential injected, so `login` would be a password oracle behind one IP (ArgusAI's 5-per-15-min limit would lock out the LAN), `change-password`/`logout`/`sessions` would act on the agent's own account, and `api-keys`/`users` would let a phone mint lasting credentials that survive its revocation |
//! | `route.docs` | `/docs`, `/docs/**`, `/redoc`, `/redoc/**`, `/openapi.json` | API map for attackers; no client needs it |
//! | `route.metrics` | `/metrics`, `/api/v1/metrics` | Prometheus and pipeline internals, unauthenticated on the backend |
//! | `route.backend_health` | `/health` | the backend's own health stays local; the relay's is `/api/v1/health` |
//! | `route.unknown_agent_path` | `/api/v1/relay/**` other than `status` and `sealed`, `/.well-known/**` other than `jwks.json` and `ohttp-keys` | the relay's own namespaces: nothing else lives there |
//! | `route.outside_api` | anything not under `/api/v1/`, `/ws` or `/.well-known/` (incl. `/`) | the backend serves only its API remotely |
//!
//! # Everything else
//! - `/ws`, `/ws/**`: `GET` → [`BackendClass::WebSocket`], other methods 405.
//! - `/api/v1/**`: [`Route::Backend`] with a class from the path (any standard method; the
//!   backend answers 404/405 for what it does not have, and the policy's allowlist, which can
//!   name methods, is the gate).

/// Who answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// Served by the agent without a device token: pairing and public identity.
    Public(PublicRoute),
    /// Served by the agent, device token required.
    Agent(AgentRoute),
    /// Proxied to the backend, device token required.
    Backend { class: BackendClass },
    /// Never served on remote listeners. The reason is a stable code (`route.*`).
    Refused(&'static str),
    /// Known path, wrong method (or a method outside the standard set).
    MethodNotAllowed,
}

/// Agent-served routes that need no device token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicRoute {
    /// `POST /api/v1/devices/pair`
    PairCode,
    /// `POST /api/v1/mobile/auth/pair`
    MobilePair,
    /// `GET /api/v1/mobile/auth/status/{code}`
    MobileStatus,
    /// `POST /api/v1/mobile/auth/exchange`
    MobileExchange,
    /// `POST /api/v1/mobile/auth/refresh`
    MobileRefresh,
    /// `GET /.well-known/jwks.json`
    Jwks,
    /// `GET /.well-known/ohttp-keys`: the agent's Oblivious HTTP key configuration.
    OhttpKeys,
    /// `GET /api/v1/health`
    Health,
}

impl PublicRoute {
    pub const ALL: [PublicRoute; 8] = [
        PublicRoute::PairCode,
        PublicRoute::MobilePair,
        PublicRoute::MobileStatus,
        PublicRoute::MobileExchange,
        PublicRoute::MobileRefresh,
        PublicRoute::Jwks,
        PublicRoute::OhttpKeys,
        PublicRoute::Health,
    ];

    /// The one method this route answers.
    pub const fn method(self) -> &'static str {
        match self {
            PublicRoute::MobileStatus
            | PublicRoute::Jwks
            | PublicRoute::OhttpKeys
            | PublicRoute::Health => "GET",
            _ => "POST",
        }
    }

    /// The path template (`{name}` is one segment).
    pub const fn path(self) -> &'static str {
        match self {
            PublicRoute::PairCode => "/api/v1/devices/pair",
            PublicRoute::MobilePair => "/api/v1/mobile/auth/pair",
            PublicRoute::MobileStatus => "/api/v1/mobile/auth/status/{code}",
            PublicRoute::MobileExchange => "/api/v1/mobile/auth/exchange",
            PublicRoute::MobileRefresh => "/api/v1/mobile/auth/refresh",
            PublicRoute::Jwks => "/.well-known/jwks.json",
            PublicRoute::OhttpKeys => crate::sealed::KEYS_PATH,
            PublicRoute::Health => "/api/v1/health",
        }
    }
}

/// Agent-served routes that need a device token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentRoute {
    /// `GET /api/v1/devices`
    DevicesList,
    /// `DELETE /api/v1/devices/{id}`
    DeviceDelete,
    /// `PUT /api/v1/devices/{id}/rename`
    DeviceRename,
    /// `POST /api/v1/mobile/auth/revoke`
    MobileRevoke,
    /// `GET /api/v1/relay/status`
    RelayStatus,
    /// `POST /api/v1/relay/sealed`: one encapsulated request (`message/ohttp-req`); the agent
    /// opens it and routes the request inside as if it came plain, from the same device.
    Sealed,
}

impl AgentRoute {
    pub const ALL: [AgentRoute; 6] = [
        AgentRoute::DevicesList,
        AgentRoute::DeviceDelete,
        AgentRoute::DeviceRename,
        AgentRoute::MobileRevoke,
        AgentRoute::RelayStatus,
        AgentRoute::Sealed,
    ];

    /// The one method this route answers.
    pub const fn method(self) -> &'static str {
        match self {
            AgentRoute::DevicesList | AgentRoute::RelayStatus => "GET",
            AgentRoute::DeviceDelete => "DELETE",
            AgentRoute::DeviceRename => "PUT",
            AgentRoute::MobileRevoke | AgentRoute::Sealed => "POST",
        }
    }

    /// The path template (`{name}` is one segment).
    pub const fn path(self) -> &'static str {
        match self {
            AgentRoute::DevicesList => "/api/v1/devices",
            AgentRoute::DeviceDelete => "/api/v1/devices/{id}",
            AgentRoute::DeviceRename => "/api/v1/devices/{id}/rename",
            AgentRoute::MobileRevoke => "/api/v1/mobile/auth/revoke",
            AgentRoute::RelayStatus => "/api/v1/relay/status",
            AgentRoute::Sealed => crate::sealed::SEALED_PATH,
        }
    }
}

/// What kind of traffic a backend route carries (for metrics, timeouts and transcoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendClass {
    /// JSON request/response.
    Api,
    /// An image (see [`image_kind`]): cacheable, transcodable.
    Image,
    /// A WebSocket upgrade (`/ws`, `/ws/stream/{camera_id}`).
    WebSocket,
    /// Server-sent events (`/api/v1/system/ai-processing-stream` and the like): passed through
    /// unbuffered, no API timeout.
    EventStream,
    /// Event video with range requests (`/api/v1/events/{id}/video`, `…/video/download`).
    Video,
    /// Long streamed downloads: CSV/NDJSON exports and log files.
    Export,
}

impl BackendClass {
    pub const fn as_str(self) -> &'static str {
        match self {
            BackendClass::Api => "api",
            BackendClass::Image => "image",
            BackendClass::WebSocket => "websocket",
            BackendClass::EventStream => "event_stream",
            BackendClass::Video => "video",
            BackendClass::Export => "export",
        }
    }
}

/// The images the backend serves, and how their bytes come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// `GET /api/v1/thumbnails/{date}/{filename}` — JPEG file (unauthenticated on the backend).
    Thumbnail,
    /// `GET /api/v1/events/{event_id}/thumbnail` — JPEG.
    EventThumbnail,
    /// `GET /api/v1/events/{event_id}/frames/{frame_number}` — JPEG.
    EventFrame,
    /// `GET /api/v1/context/entities/{entity_id}/thumbnail` — JPEG.
    EntityThumbnail,
    /// `GET /api/v1/cameras/{camera_id}/stream/snapshot?quality=` — JSON, JPEG in `image_base64`.
    CameraSnapshot,
    /// `GET /api/v1/cameras/{camera_id}/preview` — JSON, JPEG in `thumbnail_base64`.
    CameraPreview,
    /// `GET /api/v1/homekit/cameras/{camera_id}/snapshot` — JPEG.
    HomekitSnapshot,
}

/// How an image response carries the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageBody {
    /// The body is the image (`image/jpeg`).
    Raw,
    /// The body is a JSON object whose string field `field` is the base64 JPEG.
    JsonBase64 { field: &'static str },
}

impl ImageKind {
    pub const fn body(self) -> ImageBody {
        match self {
            ImageKind::CameraSnapshot => ImageBody::JsonBase64 {
                field: "image_base64",
            },
            ImageKind::CameraPreview => ImageBody::JsonBase64 {
                field: "thumbnail_base64",
            },
            _ => ImageBody::Raw,
        }
    }
}

/// The standard methods. Anything else is refused with 405.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    fn parse(m: &str) -> Option<Method> {
        Some(match m {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => return None,
        })
    }
}

/// Up to this many segments are looked at; deeper paths only match by prefix.
const MAX_SEGS: usize = 10;

/// The segments of a path, without allocation. One trailing `/` is dropped.
struct Segs<'a> {
    buf: [&'a str; MAX_SEGS],
    len: usize,
    /// More segments than `MAX_SEGS`.
    deeper: bool,
}

impl<'a> Segs<'a> {
    fn new(path: &'a str) -> Segs<'a> {
        let p = path.strip_prefix('/').unwrap_or(path);
        let p = p.strip_suffix('/').unwrap_or(p);
        let mut segs = Segs {
            buf: [""; MAX_SEGS],
            len: 0,
            deeper: false,
        };
        if p.is_empty() {
            return segs;
        }
        for s in p.split('/') {
            match segs.buf.get_mut(segs.len) {
                Some(slot) => {
                    *slot = s;
                    segs.len += 1;
                }
                None => {
                    segs.deeper = true;
                    break;
                }
            }
        }
        segs
    }

    /// The segments seen (all of them unless `deeper`).
    fn all(&self) -> &[&'a str] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// The exact segment list, or `None` when the path is deeper than `MAX_SEGS`.
    fn exact(&self) -> Option<&[&'a str]> {
        if self.deeper {
            None
        } else {
            Some(self.all())
        }
    }
}

/// Classifies a request by method and decoded canonical path. See the module docs.
pub fn classify(method: &str, decoded_path: &str) -> Route {
    let segs = Segs::new(decoded_path);
    if let Some(reason) = refused(&segs) {
        return Route::Refused(reason);
    }
    let Some(m) = Method::parse(method) else {
        return Route::MethodNotAllowed;
    };
    let all = segs.all();
    let exact = segs.exact().unwrap_or(&[]);

    use Method::*;
    let only = |want: Method, route: Route| {
        if m == want {
            route
        } else {
            Route::MethodNotAllowed
        }
    };
    let api = Route::Backend {
        class: BackendClass::Api,
    };

    match exact {
        [".well-known", "jwks.json"] => return only(Get, Route::Public(PublicRoute::Jwks)),
        [".well-known", "ohttp-keys"] => return only(Get, Route::Public(PublicRoute::OhttpKeys)),
        ["api", "v1", "health"] => return only(Get, Route::Public(PublicRoute::Health)),
        ["api", "v1", "relay", "status"] => {
            return only(Get, Route::Agent(AgentRoute::RelayStatus))
        }
        ["api", "v1", "relay", "sealed"] => return only(Post, Route::Agent(AgentRoute::Sealed)),
        ["api", "v1", "mobile", "auth", "pair"] => {
            return only(Post, Route::Public(PublicRoute::MobilePair))
        }
        ["api", "v1", "mobile", "auth", "status", _] => {
            return only(Get, Route::Public(PublicRoute::MobileStatus))
        }
        ["api", "v1", "mobile", "auth", "exchange"] => {
            return only(Post, Route::Public(PublicRoute::MobileExchange))
        }
        ["api", "v1", "mobile", "auth", "refresh"] => {
            return only(Post, Route::Public(PublicRoute::MobileRefresh))
        }
        ["api", "v1", "mobile", "auth", "revoke"] => {
            return only(Post, Route::Agent(AgentRoute::MobileRevoke))
        }
        ["api", "v1", "devices"] => {
            return match m {
                Get => Route::Agent(AgentRoute::DevicesList),
                Post => api,
                _ => Route::MethodNotAllowed,
            }
        }
        ["api", "v1", "devices", "pair"] => {
            return only(Post, Route::Public(PublicRoute::PairCode))
        }
        ["api", "v1", "devices", "inactive"] => return only(Delete, api),
        ["api", "v1", "devices", _] => {
            return match m {
                Delete => Route::Agent(AgentRoute::DeviceDelete),
                Put => api,
                _ => Route::MethodNotAllowed,
            }
        }
        ["api", "v1", "devices", _, "rename"] => {
            return only(Put, Route::Agent(AgentRoute::DeviceRename))
        }
        ["api", "v1", "devices", _, "token" | "preferences"] => return only(Put, api),
        _ => {}
    }

    match all {
        ["ws", ..] => only(
            Get,
            Route::Backend {
                class: BackendClass::WebSocket,
            },
        ),
        ["api", "v1", _, ..] => Route::Backend {
            class: backend_class(&segs),
        },
        // `refused` covers every other shape; this is only reached if that list and this match
        // drift apart, and then refusing is the safe answer.
        _ => Route::Refused("route.outside_api"),
    }
}

/// Method-independent refusals. `None` means "not refused".
fn refused(segs: &Segs<'_>) -> Option<&'static str> {
    let all = segs.all();
    let exact = segs.exact();
    match all {
        [] => Some("route.outside_api"),
        ["docs", ..] | ["redoc", ..] => Some("route.docs"),
        ["openapi.json"] if exact.is_some() => Some("route.docs"),
        ["metrics"] if exact.is_some() => Some("route.metrics"),
        ["health"] if exact.is_some() => Some("route.backend_health"),
        ["ws", ..] => None,
        [".well-known", "jwks.json" | "ohttp-keys"] if exact.is_some() => None,
        [".well-known", ..] => Some("route.unknown_agent_path"),
        // The backend's own tunnel controls: never remotely, whatever the policy says.
        ["api", "v1", "system", "tunnel", ..] => Some("route.system_tunnel"),
        ["api", "v1", "auth" | "api-keys" | "users", ..] => Some("route.backend_credentials"),
        ["api", "v1", "mobile", "auth", rest @ ..] => match (rest, exact.is_some()) {
            (["pair" | "exchange" | "refresh" | "revoke"], true) => None,
            (["status", _], true) => None,
            _ => Some("route.backend_credentials"),
        },
        ["api", "v1", "metrics"] if exact.is_some() => Some("route.metrics"),
        ["api", "v1", "relay", "status" | "sealed"] if exact.is_some() => None,
        ["api", "v1", "relay", ..] => Some("route.unknown_agent_path"),
        ["api", "v1", _, ..] => None,
        _ => Some("route.outside_api"),
    }
}

/// The class of a backend path under `/api/v1/`.
fn backend_class(segs: &Segs<'_>) -> BackendClass {
    if image_kind_segs(segs).is_some() {
        return BackendClass::Image;
    }
    match segs.exact() {
        Some(["api", "v1", "events", _, "video"])
        | Some(["api", "v1", "events", _, "video", "download"]) => BackendClass::Video,
        Some(["api", "v1", "system", s]) if s.ends_with("-stream") => BackendClass::EventStream,
        Some(["api", "v1", "system", "backup", _, "download"])
        | Some(["api", "v1", "events" | "motion-events", "export"])
        | Some(["api", "v1", "context", "adjustments", "export"])
        | Some(["api", "v1", "webhooks", "logs", "export"])
        | Some(["api", "v1", "logs", "download"]) => BackendClass::Export,
        _ => BackendClass::Api,
    }
}

/// Which image a path is, if it is one. Matches on the decoded path; one trailing `/` ignored.
pub fn image_kind(decoded_path: &str) -> Option<ImageKind> {
    image_kind_segs(&Segs::new(decoded_path))
}

fn image_kind_segs(segs: &Segs<'_>) -> Option<ImageKind> {
    Some(match segs.exact()? {
        ["api", "v1", "thumbnails", _, _] => ImageKind::Thumbnail,
        ["api", "v1", "events", _, "thumbnail"] => ImageKind::EventThumbnail,
        ["api", "v1", "events", _, "frames", _] => ImageKind::EventFrame,
        ["api", "v1", "context", "entities", _, "thumbnail"] => ImageKind::EntityThumbnail,
        ["api", "v1", "cameras", _, "stream", "snapshot"] => ImageKind::CameraSnapshot,
        ["api", "v1", "cameras", _, "preview"] => ImageKind::CameraPreview,
        ["api", "v1", "homekit", "cameras", _, "snapshot"] => ImageKind::HomekitSnapshot,
        _ => return None,
    })
}

/// True for the backend's image paths: thumbnails, event thumbnails and frames, entity
/// thumbnails and camera snapshots/previews (see [`ImageKind`]).
pub fn is_image_path(decoded_path: &str) -> bool {
    image_kind(decoded_path).is_some()
}

/// The methods a path answers, for the `Allow` header of a 405. Empty for refused paths and for
/// backend-only paths (where the backend decides).
pub fn allowed_methods(decoded_path: &str) -> &'static [&'static str] {
    let segs = Segs::new(decoded_path);
    if refused(&segs).is_some() {
        return &[];
    }
    match segs.all() {
        [".well-known", "jwks.json"]
        | ["api", "v1", "health"]
        | ["api", "v1", "relay", "status"]
        | ["api", "v1", "mobile", "auth", "status", _] => &["GET"],
        ["api", "v1", "mobile", "auth", "pair" | "exchange" | "refresh" | "revoke"]
        | ["api", "v1", "devices", "pair"] => &["POST"],
        ["api", "v1", "devices"] => &["GET", "POST"],
        ["api", "v1", "devices", "inactive"] => &["DELETE"],
        ["api", "v1", "devices", _] => &["PUT", "DELETE"],
        ["api", "v1", "devices", _, "rename" | "token" | "preferences"] => &["PUT"],
        ["ws", ..] => &["GET"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: Route = Route::Backend {
        class: BackendClass::Api,
    };
    const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

    #[test]
    fn public_routes() {
        for r in PublicRoute::ALL {
            let path = r.path().replace("{code}", "123456");
            assert_eq!(classify(r.method(), &path), Route::Public(r), "{path}");
            let slash = format!("{path}/");
            assert_eq!(classify(r.method(), &slash), Route::Public(r), "{slash}");
            for m in METHODS.iter().filter(|m| **m != r.method()) {
                assert_eq!(classify(m, &path), Route::MethodNotAllowed, "{m} {path}");
            }
        }
    }

    #[test]
    fn agent_routes() {
        for r in AgentRoute::ALL {
            let path = r.path().replace("{id}", "dev_7f3a");
            assert_eq!(classify(r.method(), &path), Route::Agent(r), "{path}");
        }
        assert_eq!(
            classify("POST", "/api/v1/relay/status"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            classify("GET", "/api/v1/mobile/auth/revoke"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            classify("GET", "/api/v1/devices/x/rename"),
            Route::MethodNotAllowed
        );
    }

    #[test]
    fn devices_split_between_agent_and_backend() {
        assert_eq!(
            classify("GET", "/api/v1/devices"),
            Route::Agent(AgentRoute::DevicesList)
        );
        assert_eq!(
            classify("GET", "/api/v1/devices/"),
            Route::Agent(AgentRoute::DevicesList)
        );
        assert_eq!(classify("POST", "/api/v1/devices"), API);
        assert_eq!(
            classify("PATCH", "/api/v1/devices"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            classify("DELETE", "/api/v1/devices"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            classify("POST", "/api/v1/devices/pair"),
            Route::Public(PublicRoute::PairCode)
        );
        assert_eq!(
            classify("DELETE", "/api/v1/devices/pair"),
            Route::MethodNotAllowed
        );
        assert_eq!(classify("DELETE", "/api/v1/devices/inactive"), API);
        assert_eq!(
            classify("PUT", "/api/v1/devices/inactive"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            classify("DELETE", "/api/v1/devices/abc"),
            Route::Agent(AgentRoute::DeviceDelete)
        );
        assert_eq!(classify("PUT", "/api/v1/devices/abc"), API);
        assert_eq!(
            classify("GET", "/api/v1/devices/abc"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            classify("PUT", "/api/v1/devices/abc/rename"),
            Route::Agent(AgentRoute::DeviceRename)
        );
        assert_eq!(classify("PUT", "/api/v1/devices/abc/token"), API);
        assert_eq!(classify("PUT", "/api/v1/devices/abc/preferences"), API);
        assert_eq!(
            classify("POST", "/api/v1/devices/abc/token"),
            Route::MethodNotAllowed
        );
        assert_eq!(classify("GET", "/api/v1/devices/abc/other/deeper"), API);
    }

    #[test]
    fn system_paths_are_routed_with_their_traffic_class_except_tunnel_controls() {
        let backend = |class| Route::Backend { class };
        assert_eq!(
            classify("GET", "/api/v1/system/ai-processing-stream"),
            backend(BackendClass::EventStream)
        );
        assert_eq!(
            classify("GET", "/api/v1/system/backup/20250101/download"),
            backend(BackendClass::Export)
        );
        assert_eq!(
            classify("POST", "/api/v1/system/restore"),
            backend(BackendClass::Api)
        );
        assert_eq!(
            classify("GET", "/api/v1/system/settings"),
            backend(BackendClass::Api)
        );
        assert_eq!(
            classify("POST", "/api/v1/system/tunnel/stop"),
            Route::Refused("route.system_tunnel")
        );
    }

    #[test]
    fn the_edge_state_path_is_never_routed_for_phones() {
        assert_eq!(
            classify("GET", crate::edge_state::EDGE_STATE_PATH),
            Route::Refused("route.outside_api")
        );
    }

    #[test]
    fn refused_paths() {
        let cases = [
            ("/api/v1/system/tunnel", "route.system_tunnel"),
            ("/api/v1/system/tunnel/start", "route.system_tunnel"),
            ("/api/v1/system/tunnel/stop", "route.system_tunnel"),
            ("/api/v1/system/tunnel/status", "route.system_tunnel"),
            ("/api/v1/auth/login", "route.backend_credentials"),
            ("/api/v1/auth/refresh", "route.backend_credentials"),
            ("/api/v1/auth/me", "route.backend_credentials"),
            ("/api/v1/auth/change-password", "route.backend_credentials"),
            ("/api/v1/auth", "route.backend_credentials"),
            ("/api/v1/api-keys", "route.backend_credentials"),
            ("/api/v1/api-keys/k1/usage", "route.backend_credentials"),
            ("/api/v1/users", "route.backend_credentials"),
            ("/api/v1/users/u1/reset", "route.backend_credentials"),
            ("/api/v1/mobile/auth/confirm", "route.backend_credentials"),
            ("/api/v1/mobile/auth/pending", "route.backend_credentials"),
            (
                "/api/v1/mobile/auth/pending/123456",
                "route.backend_credentials",
            ),
            ("/api/v1/mobile/auth/status", "route.backend_credentials"),
            (
                "/api/v1/mobile/auth/status/1/2",
                "route.backend_credentials",
            ),
            ("/api/v1/mobile/auth", "route.backend_credentials"),
            ("/docs", "route.docs"),
            ("/docs/", "route.docs"),
            ("/docs/oauth2-redirect", "route.docs"),
            ("/redoc", "route.docs"),
            ("/openapi.json", "route.docs"),
            ("/metrics", "route.metrics"),
            ("/metrics/", "route.metrics"),
            ("/api/v1/metrics", "route.metrics"),
            ("/health", "route.backend_health"),
            ("/api/v1/relay", "route.unknown_agent_path"),
            ("/api/v1/relay/other", "route.unknown_agent_path"),
            (
                "/.well-known/openid-configuration",
                "route.unknown_agent_path",
            ),
            ("/", "route.outside_api"),
            ("/api", "route.outside_api"),
            ("/api/v1", "route.outside_api"),
            ("/api/v2/events", "route.outside_api"),
            ("/static/app.js", "route.outside_api"),
            ("/favicon.ico", "route.outside_api"),
            ("/openapi.json/x", "route.outside_api"),
        ];
        for (path, reason) in cases {
            for m in METHODS.iter().chain(["TRACE", "get", "PROPFIND"].iter()) {
                assert_eq!(classify(m, path), Route::Refused(reason), "{m} {path}");
            }
            assert!(allowed_methods(path).is_empty(), "{path}");
        }
    }

    #[test]
    fn similar_names_are_not_refused() {
        assert_eq!(classify("GET", "/api/v1/system-notifications"), API);
        assert_eq!(
            classify("PATCH", "/api/v1/system-notifications/n1/read"),
            API
        );
        assert_eq!(classify("GET", "/api/v1/authors"), API);
        assert_eq!(classify("GET", "/api/v1/System/settings"), API); // backend: 404
        assert_eq!(classify("GET", "/api/v1/metrics/x"), API);
    }

    #[test]
    fn backend_classes() {
        let cases = [
            ("GET", "/api/v1/events", BackendClass::Api),
            ("GET", "/api/v1/events/", BackendClass::Api),
            ("POST", "/api/v1/events/e1/feedback", BackendClass::Api),
            (
                "GET",
                "/api/v1/thumbnails/2025-01-01/abc.jpg",
                BackendClass::Image,
            ),
            ("GET", "/api/v1/events/e1/thumbnail", BackendClass::Image),
            ("GET", "/api/v1/events/e1/frames/3", BackendClass::Image),
            (
                "GET",
                "/api/v1/context/entities/n1/thumbnail",
                BackendClass::Image,
            ),
            (
                "GET",
                "/api/v1/cameras/c1/stream/snapshot",
                BackendClass::Image,
            ),
            ("GET", "/api/v1/cameras/c1/preview", BackendClass::Image),
            (
                "GET",
                "/api/v1/homekit/cameras/c1/snapshot",
                BackendClass::Image,
            ),
            ("GET", "/api/v1/events/e1/video", BackendClass::Video),
            (
                "GET",
                "/api/v1/events/e1/video/download",
                BackendClass::Video,
            ),
            ("GET", "/api/v1/events/export", BackendClass::Export),
            ("GET", "/api/v1/motion-events/export", BackendClass::Export),
            ("GET", "/api/v1/logs/download", BackendClass::Export),
            ("GET", "/ws", BackendClass::WebSocket),
            ("GET", "/ws/", BackendClass::WebSocket),
            ("GET", "/ws/stream/3", BackendClass::WebSocket),
            ("GET", "/api/v1/a/b/c/d/e/f/g/h/i/j/k/l", BackendClass::Api),
        ];
        for (m, path, class) in cases {
            assert_eq!(classify(m, path), Route::Backend { class }, "{m} {path}");
        }
        assert_eq!(classify("POST", "/ws"), Route::MethodNotAllowed);
        assert_eq!(classify("DELETE", "/ws/stream/3"), Route::MethodNotAllowed);
        assert_eq!(classify("TRACE", "/api/v1/events"), Route::MethodNotAllowed);
        assert_eq!(classify("get", "/api/v1/events"), Route::MethodNotAllowed);
        assert_eq!(
            classify("CONNECT", "/api/v1/events"),
            Route::MethodNotAllowed
        );
    }

    #[test]
    fn deep_paths_still_refused_by_prefix() {
        let deep = format!("/api/v1/system/tunnel{}", "/x".repeat(40));
        assert_eq!(
            classify("GET", &deep),
            Route::Refused("route.system_tunnel")
        );
        let deep = format!("/docs{}", "/x".repeat(40));
        assert_eq!(classify("GET", &deep), Route::Refused("route.docs"));
        let deep = format!("/api/v1/mobile/auth/status{}", "/x".repeat(40));
        assert_eq!(
            classify("GET", &deep),
            Route::Refused("route.backend_credentials")
        );
        let deep = format!("/ws{}", "/x".repeat(40));
        assert_eq!(
            classify("GET", &deep),
            Route::Backend {
                class: BackendClass::WebSocket
            }
        );
        let deep = format!("/api/v1/devices{}", "/x".repeat(40));
        assert_eq!(classify("GET", &deep), API);
    }

    #[test]
    fn image_paths() {
        for p in [
            "/api/v1/thumbnails/2025-01-01/abc.jpg",
            "/api/v1/events/123e4567-e89b-12d3-a456-426614174000/thumbnail",
            "/api/v1/events/e1/frames/1",
            "/api/v1/context/entities/n1/thumbnail",
            "/api/v1/cameras/c1/stream/snapshot",
            "/api/v1/cameras/c1/preview",
            "/api/v1/homekit/cameras/c1/snapshot",
        ] {
            assert!(is_image_path(p), "{p}");
        }
        for p in [
            "/api/v1/thumbnails/2025-01-01",
            "/api/v1/thumbnails/a/b/c",
            "/api/v1/events/e1",
            "/api/v1/events/e1/frames",
            "/api/v1/cameras/c1/stream/info",
            "/api/v1/context/entities/n1",
            "/ws/stream/3",
        ] {
            assert!(!is_image_path(p), "{p}");
        }
        assert_eq!(
            image_kind("/api/v1/cameras/c1/stream/snapshot").map(ImageKind::body),
            Some(ImageBody::JsonBase64 {
                field: "image_base64"
            })
        );
        assert_eq!(
            image_kind("/api/v1/events/e1/frames/2").map(ImageKind::body),
            Some(ImageBody::Raw)
        );
    }

    #[test]
    fn allowed_methods_agree_with_classify() {
        for path in [
            "/.well-known/jwks.json",
            "/api/v1/health",
            "/api/v1/relay/status",
            "/api/v1/mobile/auth/pair",
            "/api/v1/mobile/auth/status/123456",
            "/api/v1/mobile/auth/exchange",
            "/api/v1/mobile/auth/refresh",
            "/api/v1/mobile/auth/revoke",
            "/api/v1/devices",
            "/api/v1/devices/pair",
            "/api/v1/devices/inactive",
            "/api/v1/devices/abc",
            "/api/v1/devices/abc/rename",
            "/api/v1/devices/abc/token",
            "/api/v1/devices/abc/preferences",
            "/ws",
            "/ws/stream/1",
        ] {
            let allowed = allowed_methods(path);
            assert!(!allowed.is_empty(), "{path}");
            for m in METHODS {
                let mna = classify(m, path) == Route::MethodNotAllowed;
                assert_eq!(!mna, allowed.contains(&m), "{m} {path}");
            }
        }
        assert!(allowed_methods("/api/v1/events").is_empty());
    }
}
