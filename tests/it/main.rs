//! Integration tests: the real program, started in-process on port 0 against a fresh SQLite
//! database and embedded session store, and — when `TURTLEMEN_TEST_POSTGRES_URL` and
//! `TURTLEMEN_TEST_REDIS_URL` are set — again against a fresh PostgreSQL schema and Redis.
//! Command-line behaviour is tested by running the built binary.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod helpers;

mod auth;
mod broker;
mod channel_images;
mod channels;
mod chat;
mod cli;
mod client_addr;
mod cluster;
mod comments;
mod connections;
mod cookies;
mod database;
mod faults;
mod feed_heads;
mod gateway;
mod gateway_probe;
mod gateway_routes;
mod gateway_tls;
mod gateway_ws;
mod http;
mod jobs;
mod library;
mod lives;
mod media_move;
mod moderation;
mod notifications;
mod openapi;
mod operations;
mod page_cache;
mod pages;
mod recovery;
mod replicas;
mod roles;
mod scale_out;
mod scopes;
mod search;
mod seed;
mod session_end;
mod sessions;
mod signing_keys;
mod telemetry;
mod upgrade;
mod uploads;
mod upstream;
mod users;
mod videos;
