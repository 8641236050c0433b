//! The globals a lifecycle script sees besides QuickJS's own (`JSON`, `Math`, `Date`,
//! `Map`, ...): `console` (into the invocation's output), `btoa`/`atob`, `sleep(ms)`,
//! `error(message)` and `require(name)`. Nothing here reaches files or the network.

use std::rc::Rc;

use base64::Engine as _;
use rquickjs::function::Rest;
use rquickjs::{Ctx, Exception, Function, Object, Value};

use crate::convert;
use crate::limits::JS_REQUIRE_DEPTH_MAX;
use crate::modules;
use crate::session::Session;

/// CommonJS `require` over a native loader: caches each module, runs a user module's
/// factory once with `module`, `exports` and `require`, bounds the nesting. Returned as
/// a function so the loader never becomes a global.
const REQUIRE_JS: &str = r#"(function (load, depthMax) {
  const cache = Object.create(null);
  let depth = 0;
  return function require(name) {
    name = String(name);
    if (Object.prototype.hasOwnProperty.call(cache, name)) return cache[name].exports;
    const found = load(name);
    if (typeof found !== "function") {
      cache[name] = { exports: found };
      return found;
    }
    if (depth >= depthMax) throw new Error("require(\"" + name + "\"): modules nested deeper than " + depthMax);
    const module = { exports: {} };
    cache[name] = module;
    depth++;
    try {
      found.call(module.exports, module, module.exports, require);
    } catch (e) {
      delete cache[name];
      throw e;
    } finally {
      depth--;
    }
    return module.exports;
  };
})"#;

/// Installs the globals on `ctx`.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, session: &Rc<Session>) -> rquickjs::Result<()> {
    let globals = ctx.globals();
    globals.set("console", console(ctx, session)?)?;
    globals.set("btoa", Function::new(ctx.clone(), btoa)?.with_name("btoa")?)?;
    globals.set("atob", Function::new(ctx.clone(), atob)?.with_name("atob")?)?;
    globals.set(
        "error",
        Function::new(ctx.clone(), error)?.with_name("error")?,
    )?;
    let sleeper = Rc::clone(session);
    let sleep = Function::new(ctx.clone(), move |ctx: Ctx<'js>, ms: f64| {
        sleeper.sleep(&ctx, ms)
    })?;
    globals.set("sleep", sleep.with_name("sleep")?)?;

    let loader = Rc::clone(session);
    let load = Function::new(ctx.clone(), move |ctx: Ctx<'js>, name: String| {
        modules::load(&ctx, &loader, &name)
    })?;
    let make_require: Function = ctx.eval(REQUIRE_JS)?;
    let require: Function = make_require.call((load, JS_REQUIRE_DEPTH_MAX))?;
    globals.set("require", require)?;
    Ok(())
}

fn console<'js>(ctx: &Ctx<'js>, session: &Rc<Session>) -> rquickjs::Result<Object<'js>> {
    let console = Object::new(ctx.clone())?;
    for name in ["log", "info", "warn", "error", "debug"] {
        let session = Rc::clone(session);
        let write = move |ctx: Ctx<'js>, values: Rest<Value<'js>>| {
            let line: Vec<String> = values
                .0
                .into_iter()
                .map(|value| convert::display(&ctx, value))
                .collect();
            session.emit(line.join(" "));
        };
        console.set(name, Function::new(ctx.clone(), write)?.with_name(name)?)?;
    }
    Ok(console)
}

/// `btoa(text)`: base64 of the text's UTF-8 bytes (not only Latin-1, unlike browsers).
pub(crate) fn btoa(text: String) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// `atob(base64)`: the decoded bytes as text (invalid UTF-8 replaced).
pub(crate) fn atob<'js>(ctx: Ctx<'js>, encoded: String) -> rquickjs::Result<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim().as_bytes())
        .map_err(|e| Exception::throw_type(&ctx, &format!("atob: not base64: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `error(message)`: an `Error` to throw, as `helpers.error` (`throw error("...")`).
pub(crate) fn error<'js>(ctx: Ctx<'js>, message: String) -> rquickjs::Result<Value<'js>> {
    Ok(Exception::from_message(ctx, &message)?.into_value())
}
