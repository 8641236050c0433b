//! `secret`: `get(name)`, `set(name, value)`, `remove(name)` through the `Host` (which
//! enforces the instance's scope and `permitted-secrets`), and `randString(length)`, an
//! alphanumeric string from the OS's random source. A denied secret fails the invocation
//! with `JsError::SecretDenied` unless the script catches it; a missing one throws
//! `secret <name> not found`, which scripts catch to create it.

use std::rc::Rc;

use rquickjs::{Ctx, Exception, Object};

use super::method;
use crate::error::JsError;
use crate::host::HostError;
use crate::limits::JS_RAND_STRING_CHARS_MAX;
use crate::session::Session;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub(super) fn module<'js>(ctx: &Ctx<'js>, session: &Rc<Session>) -> rquickjs::Result<Object<'js>> {
    let secret = Object::new(ctx.clone())?;
    let getter = Rc::clone(session);
    method(ctx, &secret, "get", move |ctx: Ctx<'js>, name: String| {
        let result = getter.waiting(|| getter.host.secret_get(&name));
        result.map_err(|e| failure(&ctx, &getter, &name, e))
    })?;
    let setter = Rc::clone(session);
    method(
        ctx,
        &secret,
        "set",
        move |ctx: Ctx<'js>, name: String, value: String| {
            let result = setter.waiting(|| setter.host.secret_set(&name, &value));
            result.map_err(|e| failure(&ctx, &setter, &name, e))
        },
    )?;
    let remover = Rc::clone(session);
    method(
        ctx,
        &secret,
        "remove",
        move |ctx: Ctx<'js>, name: String| {
            let result = remover.waiting(|| remover.host.secret_remove(&name));
            result.map_err(|e| failure(&ctx, &remover, &name, e))
        },
    )?;
    method(ctx, &secret, "randString", |ctx: Ctx<'js>, length: f64| {
        rand_string(&ctx, length)
    })?;
    Ok(secret)
}

fn failure<'js>(
    ctx: &Ctx<'js>,
    session: &Session,
    name: &str,
    error: HostError,
) -> rquickjs::Error {
    match error {
        HostError::Denied(reason) => session.raise(
            ctx,
            JsError::SecretDenied {
                name: name.to_string(),
                reason,
            },
        ),
        HostError::NotFound(_) => {
            Exception::throw_message(ctx, &format!("secret {name} not found"))
        }
        HostError::Failed(reason) => {
            Exception::throw_message(ctx, &format!("secret {name}: {reason}"))
        }
    }
}

fn rand_string<'js>(ctx: &Ctx<'js>, length: f64) -> rquickjs::Result<String> {
    if !(0.0..=JS_RAND_STRING_CHARS_MAX as f64).contains(&length) || length.fract() != 0.0 {
        return Err(Exception::throw_range(
            ctx,
            &format!("secret.randString: length must be a whole number from 0 to {JS_RAND_STRING_CHARS_MAX}"),
        ));
    }
    let mut bytes = vec![0u8; length as usize];
    getrandom::getrandom(&mut bytes).map_err(|e| {
        Exception::throw_internal(ctx, &format!("secret.randString: no randomness: {e}"))
    })?;
    // 256 is not a multiple of 62: reject the top bytes so every character is equally likely.
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut out = String::with_capacity(bytes.len());
    let mut pending = bytes;
    while out.len() < length as usize {
        for byte in pending.iter().copied().filter(|b| *b < limit) {
            if out.len() == length as usize {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
        }
        pending = vec![0u8; length as usize - out.len()];
        getrandom::getrandom(&mut pending).map_err(|e| {
            Exception::throw_internal(ctx, &format!("secret.randString: no randomness: {e}"))
        })?;
    }
    Ok(out)
}
