//! The built-in path rules: what `"@default"` stands for in `paths.allow` and `paths.deny`.

/// The built-in allowlist: the relay's own routes plus what the ArgusAI mobile app uses
/// (derived from ArgusAI's openapi.json; see `docs/policy.md`). `"@default"` in `paths.allow`
/// stands for this list.
pub const DEFAULT_ALLOW: &[&str] = &[
    // The relay itself: pairing, tokens, identity, status.
    "POST /api/v1/devices/pair",
    "POST /api/v1/mobile/auth/pair",
    "GET /api/v1/mobile/auth/status/*",
    "POST /api/v1/mobile/auth/exchange",
    "POST /api/v1/mobile/auth/refresh",
    "POST /api/v1/mobile/auth/revoke",
    "GET /.well-known/jwks.json",
    "GET /.well-known/ohttp-keys",
    "GET /api/v1/health",
    "GET /api/v1/relay/status",
    // Sealed mode (Oblivious HTTP): one opaque POST; the agent applies the path rules inside.
    "POST /api/v1/relay/sealed",
    // Devices: relay device list/revoke/rename (agent) and push registration (backend).
    "GET,POST /api/v1/devices",
    "PUT,DELETE /api/v1/devices/*",
    "PUT /api/v1/devices/*/rename",
    "PUT /api/v1/devices/*/token",
    "PUT /api/v1/devices/*/preferences",
    // Events, their images, frames, video and feedback.
    "GET /api/v1/events",
    "GET /api/v1/events/*",
    "GET /api/v1/events/stats/aggregate",
    "GET /api/v1/events/packages/today",
    "GET /api/v1/events/*/thumbnail",
    "GET /api/v1/events/*/frames",
    "GET /api/v1/events/*/frames/*",
    "GET /api/v1/events/*/video",
    "GET /api/v1/events/*/video/download",
    "GET,POST,PUT,DELETE /api/v1/events/*/feedback",
    "GET /api/v1/thumbnails/*/*",
    "GET /api/v1/motion-events",
    "GET /api/v1/motion-events/*",
    // Cameras (read-only: list, detail, live preview and snapshot).
    "GET /api/v1/cameras",
    "GET /api/v1/cameras/*",
    "GET /api/v1/cameras/*/preview",
    "GET /api/v1/cameras/*/stream",
    "GET /api/v1/cameras/*/stream/info",
    "GET /api/v1/cameras/*/stream/snapshot",
    // Recognised people and vehicles.
    "GET /api/v1/context/entities",
    "GET /api/v1/context/entities/*",
    "GET /api/v1/context/entities/*/thumbnail",
    "GET /api/v1/context/entities/*/events",
    // In-app notifications.
    "GET /api/v1/notifications",
    "PATCH /api/v1/notifications/mark-all-read",
    "PATCH /api/v1/notifications/*/read",
    "DELETE /api/v1/notifications/*",
    // Daily summaries.
    "GET /api/v1/summaries",
    "GET /api/v1/summaries/*",
    // Live updates and live view.
    "GET /ws",
    "GET /ws/stream/*",
    // ArgusAI's live AI-processing feed (server-sent events). ArgusAI serves it to admin users
    // only, and the agent to owner-scoped devices only (`/api/v1/system/**`).
    "GET /api/v1/system/ai-processing-stream",
];

/// The built-in deny list (wins over any allow). `"@default"` in `paths.deny` stands for it.
/// Most of the first group is also refused by [`crate::route::classify`] (all but
/// `/api/v1/system/**` outside its tunnel controls, which only this list keeps from phones);
/// it is repeated here so the policy alone is safe too.
pub const DEFAULT_DENY: &[&str] = &[
    // `/api/v1/system`: phones never change it, and never read what holds the database,
    // secrets or the tunnel. Its read-only statistics and AI-processing feeds stay open to an
    // allow rule (the agent serves them to owner-scoped devices only).
    "/api/v1/system",
    "HEAD,POST,PUT,PATCH,DELETE,OPTIONS /api/v1/system/**",
    "/api/v1/system/backup/**",
    "/api/v1/system/settings/**",
    "/api/v1/system/smtp/**",
    "/api/v1/system/debug/**",
    "/api/v1/system/tunnel/**",
    "/docs/**",
    "/redoc/**",
    "/openapi.json",
    "/metrics",
    "/api/v1/metrics",
    "/health",
    "/api/v1/auth/**",
    "/api/v1/api-keys/**",
    "/api/v1/users/**",
    "/api/v1/mobile/auth/confirm",
    "/api/v1/mobile/auth/pending/**",
    // Administration that holds secrets or pairs new controllers to the cameras.
    "/api/v1/logs/**",
    "/api/v1/homekit/**",
    "/api/v1/integrations/**",
    "/api/v1/protect/**",
    "/api/v1/webhooks/**",
    "DELETE /api/v1/devices/inactive",
];
