//! `vars`: the invocation's variables (`Invocation::variables`): `get(name)` (undefined
//! when unset), `set(name, value)` (JSON values; kept for the rest of the invocation and
//! returned in `Outcome::variables`), `has(name)`.

use std::rc::Rc;

use rquickjs::{Ctx, Exception, Object, Value};

use super::method;
use crate::convert;
use crate::session::Session;

pub(super) fn module<'js>(ctx: &Ctx<'js>, session: &Rc<Session>) -> rquickjs::Result<Object<'js>> {
    let vars = Object::new(ctx.clone())?;
    let reader = Rc::clone(session);
    method(
        ctx,
        &vars,
        "get",
        move |ctx: Ctx<'js>, name: String| match reader.variables.borrow().get(&name) {
            Some(value) => convert::to_js(&ctx, value),
            None => Ok(Value::new_undefined(ctx.clone())),
        },
    )?;
    let writer = Rc::clone(session);
    method(
        ctx,
        &vars,
        "set",
        move |ctx: Ctx<'js>, name: String, value: Value<'js>| {
            let Some(json) = convert::from_js(&ctx, value)? else {
                return Err(Exception::throw_type(
                    &ctx,
                    &format!("vars.set({name}): the value has no JSON form"),
                ));
            };
            writer.variables.borrow_mut().insert(name, json);
            Ok(())
        },
    )?;
    let asker = Rc::clone(session);
    method(ctx, &vars, "has", move |name: String| {
        asker.variables.borrow().contains_key(&name)
    })?;
    Ok(vars)
}
