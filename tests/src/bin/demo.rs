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
    let tunnel = stack.agent.tunnel_url();
    let backend = stack.backend.url();
    let device_id = &device.device_id;
    let ttl = device.expires_in;
    let token = &device.access_token;
    let lines = [
        String::new(),
        "argus-relay demo is running.".into(),
        String::new(),
        format!("  edge Worker (wrangler dev / workerd)  {edge}"),
        format!("  origin agent, tunnel listener         {tunnel}"),
        format!("  origin agent, admin API (loopback)    {admin}"),
        format!("  stand-in ArgusAI backend              {backend}"),
        String::new(),
        format!("A phone (\"Test phone (owner)\", device {device_id}) is paired; its access token lives {ttl} s."),
        String::new(),
        "Try, as that phone, through the Worker -> agent -> backend:".into(),
        String::new(),
        format!("  TOKEN='{token}'"),
        format!("  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'MF-CF-Blob: {cf}' '{edge}/api/v1/events?limit=2'"),
        String::new(),
        "(MF-CF-Blob stands in for the request.cf Cloudflare adds: country, ASN, TLS version.)".into(),
        String::new(),
        "What the relay refuses, before anything reaches your home:".into(),
        String::new(),
        format!("  curl -s '{edge}/api/v1/events'                                 # no token: 401"),
        format!("  curl -s --path-as-is -H \"Authorization: Bearer $TOKEN\" -H 'MF-CF-Blob: {cf}' '{edge}/api/v1/thumbnails/..%2fapp.db'"),
        "      # ArgusAI's traversal hole (it returns its whole database): refused at the edge, 400".into(),
        format!("  curl -s '{tunnel}/api/v1/events'                               # the tunnel without the Worker: 401"),
        String::new(),
        "Owner commands against this agent:".into(),
        String::new(),
        format!("  export ARGUS_RELAY_ADMIN_URL={admin} ARGUS_RELAY_CONFIG={config}"),
        format!("  {bin} pair --scope viewer      # a code + QR for another phone"),
        format!("  {bin} devices                  # paired devices"),
        format!("  {bin} revoke {device_id}"),
        String::new(),
        "Ctrl-C stops everything.".into(),
    ];
    println!("{}", lines.join("\n"));
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("stopping...");
    drop(stack);
}
