// Package appsmith turns an Appsmith application export (the JSON file
// Appsmith's "Export" writes) into the files of a modrun package: runner
// import appsmith (DESIGN §14).
//
// # Basics
//
// Import reads the export and returns the package's files and a list of
// notes, one per thing a headless package cannot honour, each written
// ACTION.FIELD: reason. It writes nothing and executes nothing from the
// export: the caller (the CLI) writes the files into a new or empty
// directory and validates them with every load check.
//
// What maps to what:
//
//   - each REST API action (pluginType API) becomes NAME.query.yaml: its
//     method, its datasource URL (an input, with the URL as the default)
//     and path, headers and query parameters (empty rows dropped), its body
//     by formData.apiContentType (application/json → body.json text,
//     form-urlencoded → body.form, multipart → body.multipart, anything
//     else → body.raw with its type), and its timeout;
//   - each JS object (actionCollectionList) becomes NAME.js with its body;
//     its functions that run on page load (executeOnLoad, or runBehaviour
//     ON_PAGE_LOAD or AUTOMATIC) go to onLoad;
//   - {{ }} bindings carry over; a widget reference (Input1.text) becomes an
//     input (inputs.Input1_text) and is listed;
//   - names that are not JS identifiers, or that modrun reserves, are
//     renamed, and the renames listed;
//   - other plugins (SQL, Google Sheets…), Appsmith's page actions
//     (navigateTo, showModal…), uses of its preloaded libraries (each
//     noted whether modrun provides it) and settings modrun does not have
//     are listed.
//
// Both generations of the format are read: executeOnLoad (older) and
// runBehaviour (newer), pluginType on the action or in it, datasources
// embedded in the action or shared by name in datasourceList.
//
// # Caveats
//
// modrun ships two of Appsmith's preloaded libraries, lodash (_) and
// moment, loaded only into runtimes whose modules use them; an export whose
// JS uses another (xmlParser, forge…) imports, but its package does not
// validate until those uses are replaced. Datasource secrets are stripped from exports by
// Appsmith; credentials become secret inputs only where an action's headers
// name them.
//
// # Place
//
// appsmith owns turning an Appsmith export into package files: the export's
// formats, names, bindings and what cannot come over.
// It may import engine, binding and internal/..., none of the other parts
// (module kinds, stores, packages, worker, server, seal, modtest):
// TestLayering in package engine fails if it does.
package appsmith
