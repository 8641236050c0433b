//! Every ArrowScript operator: the documented set (Monk docs' cheatsheet) and
//! the ones real kits use (MONK-REFERENCE §6.3). The reference page
//! `docs/arrowscript.md` is generated from this table and every example here is
//! run by a test (with the example variables of [`crate::arrow::reference`] and
//! the [`crate::arrow::StubHost`] for host operators).

use super::Imp::{Host, IfError, Machine, Pure};
use super::Params::{Exact, Greedy, Optional, Variadic};
use super::{data, logic, machine, math, strings, Imp, OpSpec, Params};

#[allow(clippy::too_many_arguments)]
const fn op(
    name: &'static str,
    aliases: &'static [&'static str],
    group: &'static str,
    signature: &'static str,
    doc: &'static str,
    example: &'static str,
    expected: &'static str,
    inputs: usize,
    params: Params,
    imp: Imp,
) -> OpSpec {
    OpSpec {
        name,
        aliases,
        group,
        signature,
        doc,
        example,
        expected,
        inputs,
        params,
        imp,
    }
}

/// A host operator that takes only params.
#[allow(clippy::too_many_arguments)]
const fn host(
    name: &'static str,
    aliases: &'static [&'static str],
    group: &'static str,
    signature: &'static str,
    doc: &'static str,
    example: &'static str,
    expected: &'static str,
    params: Params,
) -> OpSpec {
    op(
        name, aliases, group, signature, doc, example, expected, 0, params, Host,
    )
}

const STRINGS: &str = "Strings";
const MATH: &str = "Math";
const BOOLEAN: &str = "Boolean and nil";
const DATA: &str = "Arrays, objects and the stack";
const FUNCTIONS: &str = "Functions";
const JSON: &str = "JSON";
const TYPES: &str = "Types";
const VARIABLES: &str = "Variables";
const CONNECTIONS: &str = "Connections and entities (host)";
const NETWORK: &str = "Network and containers (host)";
const WORLD: &str = "Secrets, HTTP, actions and metrics (host)";

pub static OPS: &[OpSpec] = &[
    // Strings
    op("concat", &[], STRINGS, "(a String) (b String) | concat | (ab String)",
        "Appends `b` to `a`: `\"foo\" \"bar\" concat` is `\"foobar\"` and `concat(\"x\")` appends `\"x\"`. Numbers, bools and nil are converted with `to-s` (the corpus appends ports); two arrays concatenate as arrays.",
        r#""http://" $host concat concat(":") $port concat"#, r#""http://db.local:8080""#, 1, Exact(1), Pure(strings::concat)),
    op("concat-all", &[], STRINGS, "<mark> (xs ...String) | concat-all | (s String)",
        "Concatenates every value above the last `mark` (the start of the expression counts as one), converting scalars with `to-s`.",
        r#""postgres://" $host ":" $port "/app" concat-all"#, r#""postgres://db.local:8080/app""#, 0, Variadic(0), Pure(strings::concat_all)),
    op("trim", &[], STRINGS, "(s String) | trim | (t String)",
        "Removes leading and trailing whitespace.", r#"" token\n" trim"#, r#""token""#, 1, Exact(0), Pure(strings::trim)),
    op("split", &[], STRINGS, "(s String) | split(sep String) | (parts Array)",
        "Splits `s` at every `sep`; an empty `sep` splits into characters.",
        r#""db.dns.podman" split(".dns.podman")"#, r#"["db",""]"#, 1, Exact(1), Pure(strings::split)),
    op("join", &[], STRINGS, "(xs Array) | join(sep String) | (s String)",
        "Joins the elements' text with `sep` between them.",
        r#"["a", 1, true] join(",")"#, r#""a,1,true""#, 1, Exact(1), Pure(strings::join)),
    op("replace", &[], STRINGS, "(s String) | replace(old String, new String) | (t String)",
        "Replaces every occurrence of `old` with `new`.",
        r#""mongodb+srv://h" replace("mongodb+srv://", "mongodb+srv://u:p@")"#, r#""mongodb+srv://u:p@h""#, 1, Exact(2), Pure(strings::replace)),
    // Math
    op("add", &[], MATH, "(a Number) (b Number) | add | (a+b Number)",
        "Adds. Int with int stays int (overflow is an error), a bigint makes a bigint, a float makes a float.",
        "$port 1 add", "8081", 1, Exact(1), Pure(math::add)),
    op("sub", &[], MATH, "(a Number) (b Number) | sub | (a-b Number)",
        "Subtracts the top value from the one below it.", "10 sub(4)", "6", 1, Exact(1), Pure(math::sub)),
    op("mult", &[], MATH, "(a Number) (b Number) | mult | (a*b Number)",
        "Multiplies.", "2.5 4 mult", "10.0", 1, Exact(1), Pure(math::mult)),
    op("div", &[], MATH, "(a Number) (b Number) | div | (a/b Number)",
        "Divides. Two integers give an integer when the division is exact and a float otherwise (`1 2 div` is `0.5`). Division by zero is an error.",
        "1 2 div", "0.5", 1, Exact(1), Pure(math::div)),
    op("cmp", &[], MATH, "(a Any) (b Any) | cmp | (a==b Bool)",
        "Equality, as listed under math in the docs; the same as `eq?`.", "5 5.0 cmp", "true", 1, Exact(1), Machine(machine::eq)),
    op("gt?", &["gt"], MATH, "(a Number) (b Number) | gt? | (a>b Bool)",
        "Greater than; numbers of any type, or two strings.", "0.9 0.8 gt?", "true", 1, Exact(1), Pure(math::gt)),
    op("lt?", &["lt"], MATH, "(a Number) (b Number) | lt? | (a<b Bool)",
        "Less than.", "1 2n lt?", "true", 1, Exact(1), Pure(math::lt)),
    op("ge?", &["ge", "gte?"], MATH, "(a Number) (b Number) | ge? | (a>=b Bool)",
        "Greater than or equal.", "2 2 ge?", "true", 1, Exact(1), Pure(math::ge)),
    op("le?", &["le", "lte?"], MATH, "(a Number) (b Number) | le? | (a<=b Bool)",
        "Less than or equal.", "3 2 le?", "false", 1, Exact(1), Pure(math::le)),
    op("to-hex", &[], MATH, "(x Int) | to-hex(prefix Bool?) | (hex String)",
        "Upper-case hex digits of an int or bigint, with `0x` when `prefix` is true.",
        "255 to-hex(true)", r#""0xFF""#, 1, Optional(0, 1), Pure(math::to_hex)),
    // Boolean and nil
    op("and", &[], BOOLEAN, "(a Bool) (b Bool) | and | (a&&b Bool)",
        "Boolean AND; both must be bools.", "$flag false and", "false", 1, Exact(1), Pure(logic::and)),
    op("or", &[], BOOLEAN, "(a Any) (b Any) | or | (a||b Any)",
        "`a` when it is truthy, otherwise `b`: boolean OR on bools, and a fallback for the `then(x) or(y)` idiom the corpus uses. Falsy: `nil`, `false`, `\"\"`, `0`.",
        r#""" or("_")"#, r#""_""#, 1, Exact(1), Pure(logic::or)),
    op("xor", &[], BOOLEAN, "(a Bool) (b Bool) | xor | (a!=b Bool)",
        "Boolean XOR.", "$flag true xor", "false", 1, Exact(1), Pure(logic::xor)),
    op("not", &[], BOOLEAN, "(a Bool) | not | (!a Bool)",
        "Boolean NOT; wants a bool.", "$flag not", "false", 1, Exact(0), Pure(logic::not)),
    op("eq?", &["equal?", "eq"], BOOLEAN, "(a Any) (b Any) | eq? | (a==b Bool)",
        "Equality: numbers by value across int, bigint and float; arrays element-wise; objects by keys and values in any order. Different types are simply unequal.",
        r#"200 equal?(200)"#, "true", 1, Exact(1), Machine(machine::eq)),
    op("not-eq?", &["not-equal?"], BOOLEAN, "(a Any) (b Any) | not-eq? | (a!=b Bool)",
        "Inequality, the opposite of `eq?`.", r#"$empty not-eq?("")"#, "false", 1, Exact(1), Machine(machine::not_eq)),
    op("contains?", &["has?"], BOOLEAN, "(haystack Any) (needle Any) | contains? | (found Bool)",
        "Whether a string contains a substring, an array an equal element, or an object a key. A `nil` haystack contains nothing.",
        r#""accepting connections" contains?("accepting")"#, "true", 1, Exact(1), Machine(machine::contains)),
    op("nil?", &[], BOOLEAN, "(x Any) | nil? | (isnil Bool)",
        "Whether the value is `nil`.", "nil nil?", "true", 1, Exact(0), Pure(logic::is_nil)),
    op("then", &[], BOOLEAN, "(cond Any) | then(x Any) | (x-or-nil Any)",
        "`x` when `cond` is truthy, otherwise `nil`; list entries that evaluate to `nil` (an optional port) are dropped by the caller.",
        r#"$flag then("80:80")"#, r#""80:80""#, 1, Exact(1), Pure(logic::then)),
    op("else", &[], BOOLEAN, "(v Any) | else(y Any) | (v-or-y Any)",
        "`y` when `v` is `nil`, otherwise `v`; completes `cond then(a) else(b)`.",
        "false then(5) else(3)", "3", 1, Exact(1), Pure(logic::otherwise)),
    op("default", &[], BOOLEAN, "(v Any) | default(x Any) | (v-or-x Any)",
        "`x` when `v` is `nil` or the empty string (an unset or blank variable), otherwise `v`; `0` and `false` are kept.",
        r#"$empty default("monk")"#, r#""monk""#, 1, Exact(1), Pure(logic::default)),
    op("if-error", &[], BOOLEAN, "... | if-error(x Any) | (v-or-x Any)",
        "If anything earlier in the same sequence (since the previous `if-error`) fails, drops what that part pushed and continues with `x`; otherwise does nothing. Limit errors (fuel, sizes) are not caught. The fallback must be in parentheses.",
        r#"$missing if-error("")"#, r#""""#, 0, Exact(1), IfError),
    // Arrays, objects and the stack
    op("get-member", &[], DATA, "(ob Object) | get-member(key String) | (val Any)",
        "The member `key` of an object, or element `key` of an array (negative counts from the end); `nil` when missing or when `ob` is `nil`.",
        r#"{"port": 5432} get-member("port")"#, "5432", 1, Exact(1), Pure(data::get_member)),
    op("first", &[], DATA, "(xs Array) | first | (x Any)",
        "The first element, or `nil` for an empty array or `nil`.", "[1, 2, 3] first", "1", 1, Exact(0), Pure(data::first)),
    op("last", &[], DATA, "(xs Array) | last | (x Any)",
        "The last element, or `nil` for an empty array or `nil`.", "[1, 2, 3] last", "3", 1, Exact(0), Pure(data::last)),
    op("append", &[], DATA, "(xs Array) (x Any) | append | (xs Array)",
        "A new array with `x` added at the end.", "[1] 2 append append(3)", "[1,2,3]", 1, Exact(1), Pure(data::append)),
    op("assoc", &[], DATA, "(ob Object) (key String) (value Any) | assoc | (ob Object)",
        "A new object with `key` set to `value`.", r#"{} "port" 80 assoc"#, r#"{"port":80}"#, 1, Exact(2), Pure(data::assoc)),
    op("array", &[], DATA, "| array | (xs Array)", "An empty array.", "array", "[]", 0, Exact(0), Pure(data::array)),
    op("object", &[], DATA, "| object | (ob Object)", "An empty object.", "object", "{}", 0, Exact(0), Pure(data::object)),
    op("const", &[], DATA, "| const(x Any) | (x Any)", "Pushes `x`.", "const(42)", "42", 0, Exact(1), Pure(data::constant)),
    op("dup", &[], DATA, "(x Any) | dup | (x Any) (x Any)", "Duplicates the top value.", "3 dup mult", "9", 1, Exact(0), Machine(machine::dup)),
    op("mark", &[], DATA, "| mark | <mark>",
        "Sets a mark for `concat-all` and other operators that take everything above the last mark.",
        r#""skip" mark "a" "b" concat-all"#, r#""ab""#, 0, Exact(0), Machine(machine::mark)),
    // Functions
    op("callf", &[], FUNCTIONS, "(f Func) | callf | ...",
        "Runs the function here, on this stack, as if its body were written in its place.",
        "1 <-{ 1 add } callf", "2", 0, Exact(1), Machine(machine::callf)),
    op("map", &[], FUNCTIONS, "(xs Array) | map(f Func) | (ys Array)",
        "Runs `f` on each element (on a fresh stack holding just the element) and collects the top value it leaves.",
        "[1, 2, 3] map(<-{ 1 add })", "[2,3,4]", 1, Exact(1), Machine(machine::map)),
    op("filter", &[], FUNCTIONS, "(xs Array) | filter(f Func) | (ys Array)",
        "Keeps the elements for which `f` leaves a truthy value.",
        "[1, 5, 10] filter(<-{ 4 gt? })", "[5,10]", 1, Exact(1), Machine(machine::filter)),
    op("call", &[], FUNCTIONS, "(op-name String) (args Array) | call | (result Any)",
        "Calls the operator named `op-name` with the array's elements as its parenthesised arguments.",
        r#"2 "add" [3] call"#, "5", 0, Exact(2), Machine(machine::call)),
    // JSON
    op("to-json", &[], JSON, "(x Any) | to-json | (json String)",
        "Compact JSON text, object keys in their order.", r#"{"a": [1, nil]} to-json"#, r#""{\"a\":[1,null]}""#, 1, Exact(0), Pure(data::to_json)),
    op("parse-json", &[], JSON, "(json String) | parse-json | (x Any)",
        "Parses JSON, keeping key order; integers above the int range (up to 2^64-1) become bigints, larger ones floats.",
        r#"`{"port": 80}` parse-json get-member("port")"#, "80", 1, Exact(0), Pure(data::parse_json)),
    // Types
    op("to-string", &["to-s"], TYPES, "(x Any) | to-s | (s String)",
        "Text form: strings as they are, `nil` as `\"\"`, numbers as written (bigints without `n`), arrays and objects as JSON.",
        "5432 to-s", r#""5432""#, 1, Exact(0), Pure(data::to_string)),
    op("to-int", &["to-i"], TYPES, "(x Any) | to-int | (i Int)",
        "An int from a number (floats truncated toward zero), a numeric string, or a bool (1/0).",
        r#""6379" to-int"#, "6379", 1, Exact(0), Pure(data::to_int)),
    op("to-float", &["to-f"], TYPES, "(x Any) | to-float | (f Float)",
        "A float from a number, a numeric string or a bool.", "3 to-float", "3.0", 1, Exact(0), Pure(data::to_float)),
    op("to-bigint", &["to-bi"], TYPES, "(x Any) | to-bi | (n BigInt)",
        "A bigint (128-bit) from a number, an integer string or a bool.", "42 to-bi 1 add", "43", 1, Exact(0), Pure(data::to_bigint)),
    // Variables
    op("var", &[], VARIABLES, "| var(name String) | (value Any)",
        "The value of the variable `name` (as `$name`, but the name can be computed).",
        r#"var("port")"#, "8080", 0, Exact(1), Machine(machine::var)),
    op("set-tmp", &[], VARIABLES, "(value Any) | set-tmp(name String) | (value Any)",
        "Sets a temporary variable for the rest of this run and leaves the value.",
        r#"5 set-tmp("n") $n mult"#, "25", 1, Exact(1), Machine(machine::set_tmp)),
    op("unset", &[], VARIABLES, "| unset(name String) |",
        "Forgets a temporary variable; consumes only its argument.",
        r#"7 unset("n")"#, "7", 0, Exact(1), Machine(machine::unset)),
    op("set", &[], VARIABLES, "(value Any) | set(name String) | (value Any)",
        "Persists the variable through the host (host operator), then reads back in this run; leaves the value.",
        r#"3 set("replicas")"#, "3", 1, Exact(1), Machine(machine::set)),
    // Connections and entities
    host("connection-target", &[], CONNECTIONS, "| connection-target(conn String) | (path String)",
        "The path of the entity or runnable a connection points at.",
        r#"connection-target("db")"#, r#""ns/db""#, Exact(1)),
    host("connection-hostname", &[], CONNECTIONS, "| connection-hostname(conn String) | (host String)",
        "The hostname of the connection's target service.", r#"connection-hostname("db")"#, r#""db.monk""#, Exact(1)),
    host("connection-port", &[], CONNECTIONS, "| connection-port(conn String) | (port Int)",
        "The port of the connection's target service.", r#"connection-port("db")"#, "5432", Exact(1)),
    host("connection-domain-name", &[], CONNECTIONS, "| connection-domain-name(conn String) | (domain String)",
        "The public DNS name of the connection's target.", r#"connection-domain-name("app")"#, r#""app.monk""#, Exact(1)),
    host("connection-ip", &[], CONNECTIONS, "| connection-ip(conn String) | (ip String)",
        "The overlay IP of the connection's target.", r#"connection-ip("app")"#, r#""10.0.0.2""#, Exact(1)),
    host("connection-public-ip", &[], CONNECTIONS, "| connection-public-ip(conn String) | (ip String)",
        "The public IP of the node running the connection's target.", r#"connection-public-ip("api")"#, r#""10.0.0.2""#, Exact(1)),
    host("connection-public-port", &[], CONNECTIONS, "| connection-public-port(conn String) | (port Int)",
        "The public (host) port of the connection's target service.", r#"connection-public-port("api")"#, "5432", Exact(1)),
    host("connection-user", &[], CONNECTIONS, "| connection-user(path String) | (path String)",
        "The runnable using a connection to this entity.", r#"connection-user("ns/app")"#, r#""ns/ns/app""#, Exact(1)),
    host("connection", &[], CONNECTIONS, "| connection(conn String) | (path String)",
        "The connection's target (older form of `connection-target`).", r#"connection("db")"#, r#""ns/db""#, Exact(1)),
    host("entity", &["get-entity"], CONNECTIONS, "(path String)? | entity(path String?) | (definition Object)",
        "An entity's definition; without a path (and nothing on the stack) the current entity's.",
        r#"connection-target("db") entity get-member("name")"#, r#""ns/db""#, Greedy(1)),
    host("entity-state", &["get-entity-state"], CONNECTIONS, "(path String)? | entity-state(path String?) | (state Object)",
        "An entity's saved state; without a path (and nothing on the stack) the current entity's.",
        r#"connection-target("db") entity-state get-member("address")"#, r#""10.0.0.2""#, Greedy(1)),
    host("service-port", &[], CONNECTIONS, "| service-port(runnable String, service String) | (port Int)",
        "The port of a runnable's service.", r#"service-port("ns/app", "http")"#, "5432", Exact(2)),
    host("service-public-ip", &[], CONNECTIONS, "| service-public-ip(runnable String, service String) | (ip String)",
        "The public IP a runnable's service is reachable at.", r#"service-public-ip("ns/app", "http")"#, r#""10.0.0.2""#, Exact(2)),
    host("runnable-peers", &[], CONNECTIONS, "| runnable-peers(path String) | (peers Array)",
        "The nodes running a runnable.", r#"runnable-peers("ns/app") last"#, r#""10.0.0.3""#, Exact(1)),
    host("runnable-peers-public-ips", &[], CONNECTIONS, "| runnable-peers-public-ips(path String) | (ips Array)",
        "The public IPs of the nodes running a runnable.", r#"runnable-peers-public-ips("ns/app") join(",")"#, r#""10.0.0.2,10.0.0.3""#, Exact(1)),
    // Network and containers
    host("get-hostname", &["get-container-ip"], NETWORK, "| get-hostname(runnable String?, container String) | (host String)",
        "The overlay hostname of a container (of this runnable when only the container is given).",
        r#"get-hostname("ns/db", "postgres")"#, r#""ns-db-postgres.monk""#, Optional(1, 2)),
    host("container-domain-name", &[], NETWORK, "| container-domain-name(runnable String, container String) | (name String)",
        "The DNS name of a container.", r#"container-domain-name("ns/db", "pg")"#, r#""ns-db-pg.monk""#, Exact(2)),
    host("container-name", &[], NETWORK, "| container-name(container String) | (name String)",
        "The runtime name of a container of this runnable (`runnable_container`).", r#"container-name("web")"#, r#""runnable_web""#, Exact(1)),
    host("exec", &[], NETWORK, "| exec(runnable String?, container String, cmd String, args ...String) | (stdout String)",
        "Runs a command in a container and gives its output.",
        r#"exec("postgres", "pg_isready") contains?("ok")"#, "true", Variadic(2)),
    host("ip-address-public", &[], NETWORK, "| ip-address-public | (ip String)",
        "The node's public IP address.", r#""http://" ip-address-public concat-all"#, r#""http://10.0.0.2""#, Exact(0)),
    host("peer-ip-address", &[], NETWORK, "| peer-ip-address(runnable String) | (ip String)",
        "The IP of the node running a runnable.", r#"peer-ip-address("ns/app")"#, r#""10.0.0.2""#, Exact(1)),
    host("domain-name", &[], NETWORK, "| domain-name | (domain String)",
        "The node's public domain name.", r#""https://" domain-name concat-all"#, r#""https://node.example.com""#, Exact(0)),
    host("get-resolver-ip", &[], NETWORK, "| get-resolver-ip | (ip String)",
        "The IP of the cluster DNS resolver.", "get-resolver-ip", r#""10.0.0.2""#, Exact(0)),
    host("ssl-certificate", &[], NETWORK, "| ssl-certificate | (pem String)",
        "The node's TLS certificate (PEM).", "ssl-certificate", r#""-----BEGIN CERTIFICATE-----""#, Exact(0)),
    host("ssl-private-key", &[], NETWORK, "| ssl-private-key | (pem String)",
        "The node's TLS private key (PEM).", "ssl-private-key", r#""-----BEGIN PRIVATE KEY-----""#, Exact(0)),
    host("provider", &[], NETWORK, "| provider(name String) | (info Object)",
        "Information about a cloud provider of the cluster.", r#"provider("gcp") get-member("project")"#, r#""my-project""#, Exact(1)),
    // Secrets, HTTP, actions, metrics
    host("secret", &["secret-get"], WORLD, "| secret(name String) | (value String)",
        "A secret's value; the runnable must list it in `permitted-secrets`.",
        r#"secret("db-password")"#, r#""<secret db-password>""#, Exact(1)),
    host("http-get", &[], WORLD, "| http-get(url String, options Object?) | (body String)",
        "GETs a URL; the body, or `nil` on failure.", r#"http-get("http://localhost/health") nil? not"#, "true", Optional(1, 2)),
    op("http-post", &[], WORLD, "(body String) | http-post(url String, options Object?) | (response String)",
        "POSTs `body` to a URL (host operator).", r#""{}" http-post("http://localhost/hook")"#, r#""ok""#, 1, Optional(1, 2), Host),
    host("http-get-service", &[], WORLD, "| http-get-service(runnable String?, service String, path String) | (response Object)",
        "GETs a path on a runnable's service; an object with `status` and `body`.",
        r#"http-get-service("ns/app", "api", "/health") get-member("status") 200 equal?"#, "true", Optional(2, 3)),
    op("rpc-call", &[], WORLD, "(url String) | rpc-call(method String, args ...Any) | (result Any)",
        "Calls a JSON-RPC method (host operator).", r#""http://node:8545" rpc-call("eth_blockNumber")"#, "null", 1, Variadic(1), Host),
    host("act", &[], WORLD, "| act(path String, key String, value Any, ...) | (result Any)",
        "Runs an action of another runnable with key/value arguments.",
        r#"act("ns/app/backup", "target", "/tmp")"#, "null", Variadic(1)),
    host("wait-for", &[], WORLD, "| wait-for(delay-ms Int, attempts Int, path String, key String, value Any, ...) | (result Any)",
        "Retries an action until it succeeds.", r#"wait-for(1000, 5, "ns/app/ready")"#, "null", Variadic(3)),
    host("random-uuid", &[], WORLD, "| random-uuid | (uuid String)",
        "A random UUID (from the host, so that evaluation stays deterministic).", "random-uuid", r#""00000000-0000-4000-8000-000000000000""#, Exact(0)),
    host("random", &[], WORLD, "| random(min Int?, max Int?) | (n Number)",
        "A random number between `min` and `max` (from the host).", "random(3000, 5000)", "3000", Optional(0, 2)),
    host("metric", &[], WORLD, "| metric(name String) | (value Number)",
        "A runtime metric, e.g. in `scale.value`.", r#"1.0 metric("current-replicas") add"#, "3.0", Exact(1)),
    host("cpu", &[], WORLD, "| cpu | (load Float)",
        "The runnable's CPU utilisation (0 to 1), as in the reference's `scale.value` example.",
        "cpu() 0.8 gt? then(5) else(3)", "3", Exact(0)),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for op in OPS {
            for name in std::iter::once(&op.name).chain(op.aliases) {
                assert!(seen.insert(*name), "{name} is defined twice");
                assert!(
                    !matches!(*name, "nil" | "null" | "true" | "false"),
                    "{name} is a literal"
                );
            }
        }
    }

    #[test]
    fn every_pure_op_has_room_for_its_inputs() {
        for op in OPS {
            if let Params::Variadic(_) = op.params {
                assert!(op.inputs <= 1, "{}", op.name);
            }
        }
    }
}
