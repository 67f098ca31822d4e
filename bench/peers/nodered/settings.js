// Node-RED settings for bench.ingest: no editor, no telemetry, the flow file and a pg pool from the environment.
const pg = require(process.env.PW_PG_MODULE);

module.exports = {
    flowFile: process.env.PW_FLOW_FILE,
    userDir: process.env.PW_USER_DIR,
    uiHost: "127.0.0.1",
    uiPort: Number(process.env.PW_UI_PORT),
    httpAdminRoot: false,
    httpNodeRoot: false,
    credentialSecret: false,
    flowFilePretty: true,
    diagnostics: { enabled: false },
    runtimeState: { enabled: false },
    telemetry: { enabled: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    logging: { console: { level: "info", metrics: false, audit: false } },
    functionGlobalContext: {
        pool: new pg.Pool({ ...JSON.parse(process.env.PW_PG_CONFIG), application_name: "bench-nodered", max: 2 }),
    },
};
