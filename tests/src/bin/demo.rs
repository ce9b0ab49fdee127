//! `make demo`: the whole stack on this machine — the stand-in ArgusAI backend, the origin agent
//! (`argus-relay run`, the real binary) and the edge Worker under `wrangler dev` (workerd) — with
//! one phone already paired, and the commands to try printed. Runs until Ctrl-C; everything it
//! started stops with it (its data lives in a temporary directory).

use e2e::phone::cf_blob;
use e2e::stack::Stack;

#[tokio::main]
async fn main() {
    eprintln!(
        "argus-relay demo: starting the stand-in backend, the agent and the Worker (workerd)..."
    );
    let stack = Stack::start().await;
    let device = stack.pair_phone("owner").await;
    let edge = stack.edge_url();
    let cf = cf_blob("US", 64496, "TLSv1.3").to_string();
    let config = stack.agent.config_path().display().to_string();
    let admin = stack.agent.admin_url();
    let bin = e2e::agent::binary().display().to_string();
    println!(
        "\n\
argus-relay demo is running.\n\
\n\
  edge Worker (wrangler dev / workerd)  {edge}\n\
  origin agent, tunnel listener         {tunnel}\n\
  origin agent, admin API (loopback)    {admin}\n\
  stand-in ArgusAI backend              {backend}\n\
\n\
A phone (\"Test phone (owner)\", device {device_id}) is paired. Its access token lives {ttl} s.\n\
\n\
Try, as that phone, through the Worker -> agent -> backend:\n\
\n\
  TOKEN='{token}'\n\
  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'MF-CF-Blob: {cf}' '{edge}/api/v1/events?limit=2'\n\
\n\
(`MF-CF-Blob` stands in for the request.cf Cloudflare adds: country, ASN, TLS version.)\n\
\n\
What the relay refuses, before anything reaches your home:\n\
\n\
  curl -s '{edge}/api/v1/events'                                  # no token: 401\n\
  curl -s --path-as-is '{edge}/api/v1/thumbnails/%2e%2e/app.db'   # ArgusAI's database leak: 400\n\
  curl -s '{tunnel}/api/v1/events'                                # the tunnel without the Worker: 401\n\
\n\
Owner commands against this agent:\n\
\n\
  export ARGUS_RELAY_ADMIN_URL={admin} ARGUS_RELAY_CONFIG={config}\n\
  {bin} pair --scope viewer      # a code + QR for another phone\n\
  {bin} devices                  # paired devices\n\
  {bin} revoke {device_id}\n\
\n\
Ctrl-C stops everything.",
        tunnel = stack.agent.tunnel_url(),
        backend = stack.backend.url(),
        device_id = device.device_id,
        ttl = device.expires_in,
        token = device.access_token,
    );
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("stopping...");
    drop(stack);
}
