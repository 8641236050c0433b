// Readiness: throwing means "not ready yet"; the executor tries again every period.
function main(definition, state, context) {
  const res = require("http").get(definition.api + "/databases/" + state.id);
  const db = JSON.parse(res.body);
  if (db.status != "ready") {
    throw new Error("database " + state.id + " is " + db.status);
  }
}
