// `create`: ask the API for a database; the saved state keeps its id and address.
function main(definition, state, context) {
  const res = require("http").post(definition.api + "/databases", {
    body: {name: definition.name, size: definition.size},
  });
  if (res.statusCode != 201) {
    throw new Error("create: the API answered " + res.status + ": " + res.body);
  }
  const db = JSON.parse(res.body);
  console.log("created database " + db.id + " at " + db.address);
  return {id: db.id, address: db.address, size: definition.size};
}
