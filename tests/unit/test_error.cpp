#include <doctest/doctest.h>

#include "impact/error.hpp"

using namespace impact;

TEST_CASE("the exit-code table") {
  CHECK(exit_code_for(ErrorKind::generic) == 1);
  CHECK(exit_code_for(ErrorKind::usage) == 2);
  CHECK(exit_code_for(ErrorKind::config) == 1);
  CHECK(exit_code_for(ErrorKind::auth_required) == 4);
  CHECK(exit_code_for(ErrorKind::forbidden) == 5);
  CHECK(exit_code_for(ErrorKind::not_found) == 1);
  CHECK(exit_code_for(ErrorKind::network) == 1);
  CHECK(exit_code_for(ErrorKind::timeout) == 1);
  CHECK(exit_code_for(ErrorKind::server) == 1);
  CHECK(exit_code_for(ErrorKind::protocol) == 1);
  CHECK(exit_code_for(ErrorKind::io) == 1);
  CHECK(exit_code_for(ErrorKind::partial) == 6);
  CHECK(exit_code_for(ErrorKind::pending) == 8);
  CHECK(exit_code_for(ErrorKind::cancelled) == 130);
}

TEST_CASE("HTTP statuses map to error kinds") {
  CHECK(kind_for_status(401) == ErrorKind::auth_required);
  CHECK(kind_for_status(403) == ErrorKind::forbidden);
  CHECK(kind_for_status(404) == ErrorKind::not_found);
  CHECK(kind_for_status(408) == ErrorKind::timeout);
  CHECK(kind_for_status(429) == ErrorKind::rate_limited);
  CHECK(kind_for_status(400) == ErrorKind::usage);
  CHECK(kind_for_status(500) == ErrorKind::server);
  CHECK(kind_for_status(503) == ErrorKind::server);
  CHECK(kind_for_status(302) == ErrorKind::protocol);
}

TEST_CASE("errors carry status, url and phase") {
  Error e(ErrorKind::network, "cannot connect", "check it");
  e.with_status(503).with_phase(NetPhase::connect).with_url("https://u:p@h/x");
  CHECK(e.http_status() == 503);
  CHECK(e.phase() == NetPhase::connect);
  CHECK(e.url() == "https://h/x");
  CHECK(to_string(ErrorKind::auth_required) == "auth_required");
}
