//! Integration tests: the real server over HTTP, on SQLite and (when configured) PostgreSQL.

mod support;

mod audit;
mod batch;
mod cli;
mod concurrency;
mod connections;
mod durability;
mod errors;
mod evaluation_limits;
mod evaluations;
mod input_rules;
mod instances;
mod jsonpath_cts;
mod keys;
mod layout;
mod limits;
mod openapi;
mod ops;
mod outage;
mod packets;
mod proxy;
mod proxy_evidence;
mod rbac;
mod records;
mod schemas;
mod search;
mod stated_rules;
mod stats;
mod store;
mod tenant_walls;
mod tenants;
mod trust;
mod upstream;
