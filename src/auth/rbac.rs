//! Role-based access (docs/api.md §5.3): which role a request needs, decided from its method and path alone,
//! before authentication, by the reference's table — path regexes, first match wins, anything unmatched
//! needs `admin` — followed by the rules for HandoffRail's own routes.

use super::Role;
use regex::Regex;
use std::sync::LazyLock;

/// What a request needs before it may reach a handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// Operational paths: no key, no role, no rate limit.
    Exempt,
    /// A key whose role is at least this one (when a valid key is presented at all; a request without
    /// one passes RBAC and is answered 401 by authentication).
    Role(Role),
    /// A system administrator's key (docs/api.md decision 14): tenants, `/system`, replaying every dead letter.
    System,
}

/// Routes for system administrators only, checked before the table (method, path pattern).
const SYSTEM_ONLY: [(Methods, &str); 3] = [
    (Methods::All, r"^/api/v1/tenants(/|$)"),
    (Methods::All, r"^/api/v1/system(/|$)"),
    (Methods::Only("POST"), r"^/api/v1/hooks/dlq/retry-all$"),
];

static SYSTEM_RULES: LazyLock<Vec<(Methods, Regex)>> = LazyLock::new(|| {
    SYSTEM_ONLY
        .iter()
        .map(|(methods, pattern)| {
            (
                *methods,
                Regex::new(pattern).expect("the system routes' patterns are valid"),
            )
        })
        .collect()
});

/// The 403 `detail` for an admin key of one tenant on a system administrator's route or object.
pub const SYSTEM_DENIAL: &str = "This needs a system administrator's key (the bootstrap admin key or one made by `handoffrail keys create --system`)";

/// Paths that skip RBAC and rate limiting (exact match). `/events` and `/ws` check their `api_key` themselves
/// and are long-lived (capped per tenant instead).
const EXEMPT: [&str; 9] = [
    "/events",
    "/ws",
    "/health",
    "/ready",
    "/metrics",
    "/docs",
    "/openapi.json",
    "/redoc",
    "/api/v1/health",
];

/// Which methods a rule applies to.
#[derive(Clone, Copy)]
enum Methods {
    All,
    Only(&'static str),
    AllBut(&'static str),
}

impl Methods {
    fn admit(self, method: &str) -> bool {
        match self {
            Methods::All => true,
            Methods::Only(only) => method == only,
            Methods::AllBut(except) => method != except,
        }
    }
}

struct Rule {
    pattern: Regex,
    methods: Methods,
    role: Role,
}

/// The table, in order. Rows 1–17 are the reference's (17 is dead there too: no route starts with
/// `/api/v1/dashboard`); rule 9 also matches `/packets/batch/claim`, which is why a batch claim needs
/// only `agent`. The rows after them are ours: evidence and verdicts are written by agents and read by
/// readers; the trust list and the proxy CA are managed by writers and fetched by anyone with a key; the
/// dashboard is open to every role (its pages check the session's).
const TABLE: [(&str, Methods, Role); 25] = [
    (r"^/api/v1/keys", Methods::All, Role::Admin),
    (r"^/api/v1/tenants", Methods::All, Role::Admin),
    (r"^/api/v1/system", Methods::All, Role::Admin),
    (
        r"^/api/v1/packets/search",
        Methods::Only("GET"),
        Role::Reader,
    ),
    (
        r"^/api/v1/packets/awaiting",
        Methods::Only("GET"),
        Role::Reader,
    ),
    (
        r"^/api/v1/packets/[^/]+/history",
        Methods::Only("GET"),
        Role::Reader,
    ),
    (
        r"^/api/v1/packets/[^/]+$",
        Methods::Only("GET"),
        Role::Reader,
    ),
    (r"^/api/v1/packets$", Methods::Only("GET"), Role::Reader),
    (
        r"^/api/v1/packets/[^/]+/claim",
        Methods::Only("POST"),
        Role::Agent,
    ),
    (
        r"^/api/v1/packets/[^/]+/respond",
        Methods::Only("POST"),
        Role::Agent,
    ),
    (
        r"^/api/v1/packets/[^/]+$",
        Methods::Only("PATCH"),
        Role::Agent,
    ),
    (r"^/api/v1/packets", Methods::All, Role::Writer),
    (r"^/api/v1/schemas", Methods::All, Role::Writer),
    (r"^/api/v1/hooks", Methods::All, Role::Writer),
    (r"^/api/v1/audit", Methods::Only("GET"), Role::Reader),
    (r"^/api/v1/audit", Methods::AllBut("GET"), Role::Writer),
    (r"^/api/v1/dashboard", Methods::All, Role::Reader),
    (r"^/api/v1/records", Methods::Only("GET"), Role::Reader),
    (r"^/api/v1/records", Methods::AllBut("GET"), Role::Agent),
    (r"^/api/v1/evaluations", Methods::Only("GET"), Role::Reader),
    (r"^/api/v1/evaluations", Methods::AllBut("GET"), Role::Agent),
    (r"^/api/v1/trusted-endpoints", Methods::All, Role::Writer),
    (r"^/api/v1/rules", Methods::All, Role::Writer),
    (r"^/api/v1/ca\.pem$", Methods::Only("GET"), Role::Reader),
    // The dashboard's pages check their session's key and role themselves; requests are counted per client.
    (r"^/dashboard(/|$)", Methods::All, Role::Reader),
];

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    TABLE
        .iter()
        .map(|(pattern, methods, role)| Rule {
            pattern: Regex::new(pattern).expect("the RBAC table's patterns are valid"),
            methods: *methods,
            role: *role,
        })
        .collect()
});

/// What `method path` needs (`method` upper-case, `path` without the query).
pub fn requirement(method: &str, path: &str) -> Requirement {
    if EXEMPT.contains(&path) {
        return Requirement::Exempt;
    }
    if SYSTEM_RULES
        .iter()
        .any(|(methods, pattern)| methods.admit(method) && pattern.is_match(path))
    {
        return Requirement::System;
    }
    let role = RULES
        .iter()
        .find(|rule| rule.methods.admit(method) && rule.pattern.is_match(path))
        .map_or(Role::Admin, |rule| rule.role);
    Requirement::Role(role)
}

/// The 403 `detail` for a key whose role falls short.
pub fn denial(required: Role, current: Role) -> String {
    format!(
        "Insufficient permissions. Required role: {}, current role: {}",
        required.as_str(),
        current.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(method: &str, path: &str) -> Requirement {
        requirement(method, path)
    }

    #[test]
    fn the_reference_rows_apply_in_order() {
        use Requirement::Role as R;
        let cases = [
            ("GET", "/api/v1/keys", R(Role::Admin)),
            ("DELETE", "/api/v1/keys/abc", R(Role::Admin)),
            ("GET", "/api/v1/tenants/default/keys", Requirement::System),
            ("GET", "/api/v1/tenants", Requirement::System),
            ("PATCH", "/api/v1/tenants/t1", Requirement::System),
            ("GET", "/api/v1/system/health", Requirement::System),
            ("POST", "/api/v1/hooks/dlq/retry-all", Requirement::System),
            ("GET", "/api/v1/tenantsx", R(Role::Admin)),
            ("GET", "/api/v1/packets/search", R(Role::Reader)),
            ("GET", "/api/v1/packets/awaiting", R(Role::Reader)),
            ("GET", "/api/v1/packets/p1/history", R(Role::Reader)),
            ("GET", "/api/v1/packets/p1", R(Role::Reader)),
            ("GET", "/api/v1/packets", R(Role::Reader)),
            ("POST", "/api/v1/packets/p1/claim", R(Role::Agent)),
            ("POST", "/api/v1/packets/batch/claim", R(Role::Agent)),
            ("POST", "/api/v1/packets/p1/respond", R(Role::Agent)),
            ("PATCH", "/api/v1/packets/p1", R(Role::Agent)),
            ("POST", "/api/v1/packets", R(Role::Writer)),
            ("DELETE", "/api/v1/packets/p1", R(Role::Writer)),
            ("POST", "/api/v1/packets/p1/chain", R(Role::Writer)),
            ("POST", "/api/v1/packets/batch", R(Role::Writer)),
            ("POST", "/api/v1/packets/batch/complete", R(Role::Writer)),
            ("GET", "/api/v1/packets/p1/chain", R(Role::Writer)),
            ("GET", "/api/v1/schemas", R(Role::Writer)),
            ("GET", "/api/v1/hooks", R(Role::Writer)),
            ("GET", "/api/v1/audit", R(Role::Reader)),
            ("POST", "/api/v1/audit", R(Role::Writer)),
            ("GET", "/api/v1/dashboard/stats", R(Role::Reader)),
            ("GET", "/api/v1/stats", R(Role::Admin)),
            // Ours: the live streams check their own `api_key` (any role), decision 3.
            ("GET", "/events", Requirement::Exempt),
            ("GET", "/ws", Requirement::Exempt),
            ("GET", "/api/v1/no-such-route", R(Role::Admin)),
        ];
        for (method, path, expected) in cases {
            assert_eq!(needs(method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn our_routes_follow_the_issue() {
        use Requirement::Role as R;
        let cases = [
            ("GET", "/api/v1/records", R(Role::Reader)),
            ("GET", "/api/v1/records/r1", R(Role::Reader)),
            ("GET", "/api/v1/records/export", R(Role::Reader)),
            ("POST", "/api/v1/records", R(Role::Agent)),
            ("GET", "/api/v1/evaluations/e1", R(Role::Reader)),
            ("POST", "/api/v1/evaluations", R(Role::Agent)),
            ("GET", "/api/v1/trusted-endpoints", R(Role::Writer)),
            ("DELETE", "/api/v1/trusted-endpoints/t1", R(Role::Writer)),
            ("GET", "/api/v1/ca.pem", R(Role::Reader)),
            ("POST", "/api/v1/ca.pem", R(Role::Admin)),
            ("GET", "/api/v1/caXpem", R(Role::Admin)),
        ];
        for (method, path, expected) in cases {
            assert_eq!(needs(method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn operational_paths_are_exempt_only_when_exact() {
        for path in EXEMPT {
            assert_eq!(needs("GET", path), Requirement::Exempt, "{path}");
        }
        assert_eq!(needs("GET", "/health/"), Requirement::Role(Role::Admin));
        assert_eq!(needs("GET", "/metrics/x"), Requirement::Role(Role::Admin));
    }

    #[test]
    fn denials_name_both_roles() {
        assert_eq!(
            denial(Role::Writer, Role::Reader),
            "Insufficient permissions. Required role: writer, current role: reader"
        );
    }
}
