//! What `require(name)` finds: the built-in modules (`cli`, `secret`, `http`, `fs`,
//! `parser`, `vars`, `helpers`, `crypto`), then the user modules the script was given
//! (`defines: module`, by `ns/name`), else `JsError::ModuleNotAvailable`. Cloud provider
//! modules are deliberately absent.

mod cli;
mod crypto;
mod fs;
mod helpers;
mod http;
mod parser;
mod secret;
mod vars;

use std::rc::Rc;

use rquickjs::function::IntoJsFunc;
use rquickjs::{Ctx, Function, Object, Value};

use crate::error::JsError;
use crate::quickjs;
use crate::session::Session;

/// Modules Monk's runtime has that this one does not; requiring one fails with a hint
/// that names the reason.
pub const CLOUD_MODULES: &[&str] = &[
    "cloud/aws",
    "cloud/gcp",
    "cloud/azure",
    "cloud/digitalocean",
    "cloud/hetzner",
    "aws",
    "gcp",
    "azure",
    "digitalocean",
    "blobs",
    "monkrpc",
];

/// The built-in module names, in the order the docs list them.
pub const BUILTIN_MODULES: &[&str] = &[
    "cli", "secret", "fs", "parser", "http", "vars", "helpers", "crypto",
];

/// `require`'s native half: a built-in module's object, a user module's factory
/// `(module, exports, require)`, or a typed "not available" error.
pub(crate) fn load<'js>(
    ctx: &Ctx<'js>,
    session: &Rc<Session>,
    name: &str,
) -> rquickjs::Result<Value<'js>> {
    let module = match name {
        "cli" => cli::module(ctx, session)?,
        "secret" => secret::module(ctx, session)?,
        "http" => http::module(ctx, session)?,
        "fs" => fs::module(ctx, session)?,
        "parser" => parser::module(ctx)?,
        "vars" => vars::module(ctx, session)?,
        "helpers" => helpers::module(ctx)?,
        "crypto" => crypto::module(ctx)?,
        _ => return user_module(ctx, session, name),
    };
    Ok(module.into_value())
}

fn user_module<'js>(
    ctx: &Ctx<'js>,
    session: &Rc<Session>,
    name: &str,
) -> rquickjs::Result<Value<'js>> {
    let Some(source) = session.modules.get(name) else {
        return Err(session.raise(
            ctx,
            JsError::ModuleNotAvailable {
                name: name.to_string(),
            },
        ));
    };
    let factory = quickjs::compile(
        ctx,
        session,
        &quickjs::module_file(name),
        quickjs::MODULE_PREFIX,
        source,
        quickjs::MODULE_SUFFIX,
    )
    .map_err(|error| session.raise(ctx, error))?;
    Ok(factory.into_value())
}

/// Sets `object[name]` to a native function.
pub(crate) fn method<'js, P, F>(
    ctx: &Ctx<'js>,
    object: &Object<'js>,
    name: &str,
    f: F,
) -> rquickjs::Result<()>
where
    F: IntoJsFunc<'js, P> + 'js,
{
    object.set(name, Function::new(ctx.clone(), f)?.with_name(name)?)
}
