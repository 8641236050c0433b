//! `helpers`: `error(message)` (an `Error` to throw), `btoa`, `atob`: the same
//! functions as the globals of those names, for scripts written against the module.

use rquickjs::{Ctx, Function, Object};

use crate::globals;

pub(super) fn module<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let helpers = Object::new(ctx.clone())?;
    helpers.set(
        "error",
        Function::new(ctx.clone(), globals::error)?.with_name("error")?,
    )?;
    helpers.set(
        "btoa",
        Function::new(ctx.clone(), globals::btoa)?.with_name("btoa")?,
    )?;
    helpers.set(
        "atob",
        Function::new(ctx.clone(), globals::atob)?.with_name("atob")?,
    )?;
    Ok(helpers)
}
