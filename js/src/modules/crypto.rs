//! `crypto`: `sha256(text)` and `hmac(key, text)` (HMAC-SHA256) as lowercase hex, as
//! MonkEC's `base.js` and the Azure kits use them; `hex(text)` and `base64(text)` encode
//! a text's UTF-8 bytes. Keys and texts are taken as UTF-8.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rquickjs::{Ctx, Exception, Object};
use sha2::{Digest, Sha256};

use super::method;

pub(super) fn module<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let crypto = Object::new(ctx.clone())?;
    method(ctx, &crypto, "sha256", |text: String| {
        hex::encode(Sha256::digest(text.as_bytes()))
    })?;
    method(
        ctx,
        &crypto,
        "hmac",
        |ctx: Ctx<'js>, key: String, text: String| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
                .map_err(|e| Exception::throw_type(&ctx, &format!("crypto.hmac: {e}")))?;
            mac.update(text.as_bytes());
            Ok::<_, rquickjs::Error>(hex::encode(mac.finalize().into_bytes()))
        },
    )?;
    method(ctx, &crypto, "hex", |text: String| {
        hex::encode(text.as_bytes())
    })?;
    method(ctx, &crypto, "base64", |text: String| {
        base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
    })?;
    Ok(crypto)
}
