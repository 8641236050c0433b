//! Values across the boundary: `serde_json::Value` into JavaScript and back (through
//! QuickJS's own JSON, so both sides agree on every number and string), and the text
//! `console.log` shows for any value.

use rquickjs::{Coerced, Ctx, Exception, Value};

/// A JSON value as a JavaScript value.
pub(crate) fn to_js<'js>(
    ctx: &Ctx<'js>,
    value: &serde_json::Value,
) -> rquickjs::Result<Value<'js>> {
    let text = serde_json::to_string(value).map_err(|error| {
        Exception::throw_internal(ctx, &format!("cannot encode a value: {error}"))
    })?;
    ctx.json_parse(text)
}

/// A JavaScript value as JSON (`JSON.stringify` rules: functions and `undefined` members
/// vanish). `None` when the value has no JSON form (`undefined`, a function).
pub(crate) fn from_js<'js>(
    ctx: &Ctx<'js>,
    value: Value<'js>,
) -> rquickjs::Result<Option<serde_json::Value>> {
    let Some(text) = ctx.json_stringify(value)? else {
        return Ok(None);
    };
    let text = text.to_string()?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| Exception::throw_internal(ctx, &format!("cannot decode a value: {error}")))
}

/// A JSON value's text, for modules that take "a string or something to stringify".
pub(crate) fn text<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> rquickjs::Result<String> {
    if let Some(string) = value.as_string() {
        return string.to_string();
    }
    Ok(ctx
        .json_stringify(value)?
        .map(|s| s.to_string())
        .transpose()?
        .unwrap_or_default())
}

/// How `console.log` shows a value: strings as they are, errors as `Name: message`,
/// other objects as JSON, everything else as `String(value)`.
pub(crate) fn display<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> String {
    if let Some(string) = value.as_string() {
        return string.to_string().unwrap_or_default();
    }
    if value.is_error() || value.is_function() || !value.is_object() {
        return value
            .get::<Coerced<String>>()
            .map(|c| c.0)
            .unwrap_or_else(|_| String::from("[value]"));
    }
    match ctx.json_stringify(value.clone()) {
        Ok(Some(json)) => json.to_string().unwrap_or_default(),
        _ => {
            // Cyclic or otherwise unserialisable: drop the pending exception.
            ctx.catch();
            value
                .get::<Coerced<String>>()
                .map(|c| c.0)
                .unwrap_or_else(|_| String::from("[object]"))
        }
    }
}
