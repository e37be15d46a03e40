// Package auth is the home of OpenVisit's authentication building blocks
// (DESIGN.md, decision 8). The parent package holds nothing; each job is a
// small subpackage with no database or HTTP-server dependency, so that the
// handlers and the Postgres store can be wired around them later:
//
//   - password: argon2id hashing in PHC form and the password policy.
//   - totp: RFC 6238 codes with replay protection, enrolment URI and QR code,
//     and hashed one-time recovery codes.
//   - session: opaque session tokens (only their SHA-256 is stored), the idle
//     and absolute expiry policy, and the __Host- cookie.
//   - csrf: per-session CSRF tokens and the Origin / Sec-Fetch-Site check.
//   - throttle: per-account backoff and lock-out, and a bounded per-IP
//     token-bucket limiter.
//
// Every timed decision takes the current time as an argument (or an injected
// clock), never calls time.Now itself.
package auth
