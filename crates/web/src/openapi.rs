//! The OpenAPI 3.1 description of the REST API, served at `/api/v1/openapi.json`. The
//! integration tests call every operation listed here and check that each one exists.

use serde_json::{Value, json};

/// The document.
pub fn document() -> Value {
    let error = json!({ "$ref": "#/components/schemas/Error" });
    let errors = |codes: &[&str]| -> Value {
        codes
            .iter()
            .map(|c| ((*c).to_owned(), json!({ "description": describe(c), "content": { "application/json": { "schema": error } } })))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let with = |mut base: Value, extra: Value| {
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        base
    };
    let secured = json!([{ "bearer": [] }]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Postern REST API",
            "version": "1",
            "description": "Administer a Postern gateway. Log in for a token, send it as \
                `Authorization: Bearer <token>`. Changes are staged in the token's session until \
                committed, as in the CLI and the web UI."
        },
        "servers": [{ "url": "/" }],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": { "error": { "type": "string" } }
                },
                "Protocols": {
                    "type": "array",
                    "items": { "type": "string", "enum": ["tlsv1_0", "tlsv1_1", "tlsv1_2", "tlsv1_3"] },
                    "description": "Enabled TLS versions; they must form one contiguous range."
                },
                "ServiceSettings": {
                    "type": "object",
                    "properties": {
                        "protocols": { "$ref": "#/components/schemas/Protocols" },
                        "method": { "type": "string", "examples": ["tlsv1_1tlsv1_2"] },
                        "ciphers": { "type": "string", "description": "OpenSSL cipher string for TLS v1.2 and older." }
                    }
                },
                "SslSettings": {
                    "type": "object",
                    "properties": {
                        "gui_https": { "$ref": "#/components/schemas/ServiceSettings" },
                        "inbound_smtp": { "$ref": "#/components/schemas/ServiceSettings" },
                        "outbound_smtp": { "$ref": "#/components/schemas/ServiceSettings" },
                        "other_client": {
                            "type": "object",
                            "properties": {
                                "tls_v1_0": { "type": "boolean" },
                                "protocols": { "$ref": "#/components/schemas/Protocols" }
                            }
                        },
                        "tls13_ciphers": { "type": "array", "items": { "type": "string" } }
                    }
                },
                "ServiceChange": {
                    "type": "object", "additionalProperties": false,
                    "properties": {
                        "protocols": { "$ref": "#/components/schemas/Protocols" },
                        "ciphers": { "type": "string" }
                    }
                },
                "SslChange": {
                    "type": "object", "additionalProperties": false,
                    "description": "What is given changes; what is left out stays.",
                    "properties": {
                        "gui_https": { "$ref": "#/components/schemas/ServiceChange" },
                        "inbound_smtp": { "$ref": "#/components/schemas/ServiceChange" },
                        "outbound_smtp": { "$ref": "#/components/schemas/ServiceChange" },
                        "other_client": {
                            "type": "object", "additionalProperties": false, "required": ["tls_v1_0"],
                            "properties": { "tls_v1_0": { "type": "boolean" } }
                        }
                    }
                },
                "SslAnswer": {
                    "type": "object",
                    "properties": {
                        "settings": { "$ref": "#/components/schemas/SslSettings" },
                        "pending": { "type": "boolean", "description": "The session has uncommitted changes." },
                        "committed_generation": { "type": "integer" }
                    }
                }
            }
        },
        "paths": {
            "/api/v1/openapi.json": {
                "get": { "summary": "This document.", "security": [],
                    "responses": { "200": { "description": "The OpenAPI document." } } }
            },
            "/api/v1/login": {
                "post": {
                    "summary": "Log in; answers a token.", "security": [],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "required": ["username", "password"],
                        "properties": { "username": { "type": "string" }, "password": { "type": "string" } }
                    } } } },
                    "responses": with(json!({ "200": { "description": "Logged in.", "content": { "application/json": { "schema": {
                        "type": "object", "properties": { "token": { "type": "string" }, "user": { "type": "string" } }
                    } } } } }), errors(&["400", "401", "403", "413", "415", "422", "503"]))
                }
            },
            "/api/v1/logout": {
                "post": { "summary": "End the token's session; its pending changes are dropped.", "security": secured,
                    "responses": with(json!({ "204": { "description": "Logged out." } }), errors(&["401"])) }
            },
            "/api/v1/config/ssl": {
                "get": { "summary": "The SSL settings as this session sees them.", "security": secured,
                    "responses": with(json!({ "200": { "description": "Settings.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SslAnswer" } } } } }), errors(&["401"])) },
                "put": { "summary": "Stage a change of the SSL settings.", "security": secured,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SslChange" } } } },
                    "responses": with(json!({ "200": { "description": "Staged.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SslAnswer" } } } } }), errors(&["400", "401", "413", "415", "422"])) }
            },
            "/api/v1/commit": {
                "post": { "summary": "Commit the session's staged changes.", "security": secured,
                    "requestBody": { "required": false, "content": { "application/json": { "schema": {
                        "type": "object", "properties": {
                            "comment": { "type": "string" },
                            "confirm_within_minutes": { "type": "integer", "minimum": 1, "maximum": 1440,
                                "description": "Roll the commit back automatically unless it is confirmed in time (POST /api/v1/confirm)." } } } } } },
                    "responses": with(json!({ "200": { "description": "Committed.", "content": { "application/json": { "schema": {
                        "type": "object", "properties": { "generation": { "type": "integer" },
                            "confirm_by": { "type": ["integer", "null"], "description": "Unix time of the automatic rollback." } } } } } } }), errors(&["401", "409", "422", "503"])) }
            },
            "/api/v1/confirm": {
                "post": { "summary": "Confirm the outstanding `commit confirmed`, whoever made it.", "security": secured,
                    "responses": with(json!({ "200": { "description": "`confirmed`: the generation." } }), errors(&["401", "409", "503"])) }
            },
            "/api/v1/clear": {
                "post": { "summary": "Discard the session's staged changes.", "security": secured,
                    "responses": with(json!({ "200": { "description": "Nothing is pending." } }), errors(&["401"])) }
            },
            "/api/v1/routes": {
                "get": { "summary": "SMTP routes: a domain (or ALL) to the hosts tried in order.", "security": secured,
                    "responses": with(json!({ "200": { "description": "`routes`: [{domain, hosts}], `pending`." } }), errors(&["401"])) }
            },
            "/api/v1/routes/{domain}": {
                "parameters": [param("domain", "example.com, .example.com for its subdomains, or ALL")],
                "put": { "summary": "Stage the route of a domain.", "security": secured,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "required": ["hosts"], "additionalProperties": false,
                        "properties": { "hosts": { "type": "array", "items": { "type": "string", "examples": ["mx.example.com:2525"] } } } } } } },
                    "responses": with(json!({ "200": { "description": "Staged; the routes as the session sees them." } }), errors(&["400", "401", "413", "415", "422"])) },
                "delete": { "summary": "Stage the removal of a route.", "security": secured,
                    "responses": with(json!({ "200": { "description": "Staged." } }), errors(&["401", "422"])) }
            },
            "/api/v1/destinations": {
                "get": { "summary": "Destination controls: TLS and concurrency per domain; ALL for the rest.", "security": secured,
                    "responses": with(json!({ "200": { "description": "`destinations`: [{domain, tls, max_concurrency}], `pending`." } }), errors(&["401"])) }
            },
            "/api/v1/destinations/{domain}": {
                "parameters": [param("domain", "example.com, .example.com, or ALL")],
                "put": { "summary": "Stage the controls of a domain (a new one starts from ALL).", "security": secured,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "additionalProperties": false,
                        "properties": {
                            "tls": { "type": "string", "enum": ["no", "preferred", "required", "preferred-verify", "required-verify"] },
                            "max_concurrency": { "type": "integer", "minimum": 1, "maximum": 1000 } } } } } },
                    "responses": with(json!({ "200": { "description": "Staged." } }), errors(&["400", "401", "413", "415", "422"])) },
                "delete": { "summary": "Stage the removal of a domain's controls (not ALL).", "security": secured,
                    "responses": with(json!({ "200": { "description": "Staged." } }), errors(&["401", "422"])) }
            },
            "/api/v1/listeners": {
                "get": { "summary": "SMTP listeners: address, TLS, Recipient Access Table, limits.", "security": secured,
                    "responses": with(json!({ "200": { "description": "`listeners`, `pending`." } }), errors(&["401"])) }
            },
            "/api/v1/listeners/{name}": {
                "parameters": [param("name", "the listener's name, e.g. IncomingMail")],
                "put": { "summary": "Stage a listener's TLS.", "security": secured,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "required": ["tls"], "additionalProperties": false,
                        "properties": { "tls": { "type": "string", "enum": ["no", "preferred", "required"] } } } } } },
                    "responses": with(json!({ "200": { "description": "Staged." } }), errors(&["400", "401", "413", "415", "422"])) }
            },
            "/api/v1/listeners/{name}/rat/{domain}": {
                "parameters": [param("name", "the listener's name"), param("domain", "example.com, .example.com, or ALL")],
                "put": { "summary": "Stage a Recipient Access Table entry.", "security": secured,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "required": ["action"], "additionalProperties": false,
                        "properties": { "action": { "type": "string", "enum": ["accept", "reject"] } } } } } },
                    "responses": with(json!({ "200": { "description": "Staged." } }), errors(&["400", "401", "413", "415", "422"])) },
                "delete": { "summary": "Stage the removal of a Recipient Access Table entry.", "security": secured,
                    "responses": with(json!({ "200": { "description": "Staged." } }), errors(&["401", "422"])) }
            },
            "/api/v1/certificates": {
                "get": { "summary": "Imported certificates and the services that present each (the rest present the factory pair).", "security": secured,
                    "responses": with(json!({ "200": { "description": "`certificates`: {imported, factory_used_by}, `pending`." } }), errors(&["401"])) }
            },
            "/api/v1/tracking": {
                "get": { "summary": "Message tracking: the messages of mail_logs that match, newest first, with their log lines.", "security": secured,
                    "parameters": [
                        query("mid", "a message ID"), query("sender", "part of the envelope sender, any case"),
                        query("recipient", "part of a recipient, any case"),
                        query("since", "YYYY-MM-DD[ HH:MM[:SS]], the appliance's local time"), query("until", "likewise, exclusive")
                    ],
                    "responses": with(json!({ "200": { "description": "`messages`: [{mid, icid, started, sender, recipients, state, bounced, lines}], `limit`." } }), errors(&["400", "401", "422"])) }
            },
            "/api/v1/reports/tls": {
                "get": { "summary": "TLS Connections: protocols and ciphers of inbound and outbound connections, failures, clear text, per domain.", "security": secured,
                    "responses": with(json!({ "200": { "description": "`inbound` and `outbound`: {connections, tls: [{protocol, cipher, connections}], failed, clear, domains}." } }), errors(&["401"])) }
            },
            "/api/v1/status": {
                "get": { "summary": "Uptime, services, gauges and counters.", "security": secured,
                    "responses": with(json!({ "200": { "description": "Status." } }), errors(&["401", "503"])) }
            }
        }
    })
}

/// A query parameter.
fn query(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } })
}

/// A path parameter.
fn param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

fn describe(code: &str) -> &'static str {
    match code {
        "400" => "The body is not valid JSON.",
        "401" => "No token, or one that is no longer valid.",
        "403" => "The account is locked after repeated failed logins.",
        "409" => "Nothing to commit, or the commit was refused (the changes stay staged).",
        "413" => "The body is too large.",
        "415" => "The body is not `application/json`.",
        "422" => "The body does not describe a valid change; `error` says why.",
        "503" => "The gateway is busy or its supervisor cannot be reached.",
        _ => "Error.",
    }
}
