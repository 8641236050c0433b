//! `cli`: `output(...values)` writes a line the CLI shows the user (Monk prints them as
//! the verb's result lines); values are joined with spaces as `console.log` does.

use std::rc::Rc;

use rquickjs::function::Rest;
use rquickjs::{Ctx, Object, Value};

use super::method;
use crate::convert;
use crate::session::Session;

pub(super) fn module<'js>(ctx: &Ctx<'js>, session: &Rc<Session>) -> rquickjs::Result<Object<'js>> {
    let cli = Object::new(ctx.clone())?;
    let session = Rc::clone(session);
    method(
        ctx,
        &cli,
        "output",
        move |ctx: Ctx<'js>, values: Rest<Value<'js>>| {
            let parts: Vec<String> = values
                .0
                .into_iter()
                .map(|value| convert::display(&ctx, value))
                .collect();
            session.emit(parts.join(" "));
        },
    )?;
    Ok(cli)
}
