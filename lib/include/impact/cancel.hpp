// Process-wide cancellation: the CLI's SIGINT handler calls request_cancel(); transfers and waits in the
// library notice it within a fraction of a second and throw Error(cancelled).
#pragma once
namespace impact {
void request_cancel() noexcept;          // async-signal-safe
bool cancel_requested() noexcept;
void reset_cancel() noexcept;            // for tests
void throw_if_cancelled();               // throws Error(cancelled)
}  // namespace impact
