//! The admin token: the owner's credential for the admin API (in `<data_dir>/admin.token`,
//! 0600), compared in constant time.

use hyper::Request;
use subtle::ConstantTimeEq;

use crate::base::http::body::Body;
use crate::domain::auth::device_token::bearer;

/// The request carries the admin token.
pub(crate) fn authorized(admin_token: &[u8], req: &Request<Body>) -> bool {
    let Some(token) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
    else {
        return false;
    };
    bool::from(token.as_bytes().ct_eq(admin_token))
}
