//! The page frame (header, navigation by role, main, footer) and small shared pieces.

use maud::{DOCTYPE, Markup, html};

use super::Viewer;
use crate::identity::PlatformRole;

/// A whole page. The navigation shows what the viewer's roles can use; the server still checks
/// every request.
pub fn page(viewer: Option<&Viewer>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(viewer) = viewer {
                    meta name="csrf-token" content=(viewer.csrf);
                }
                title { (title) " · Trellis" }
                link rel="stylesheet" href="/static/trellis.css";
                link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
                script src="/static/trellis.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.site {
                    a.brand href="/" { "Trellis" }
                    nav aria-label="Main" {
                        ul {
                            @if let Some(viewer) = viewer {
                                li { a href="/projects" { "Projects" } }
                                li { a href="/tokens" { "Access tokens" } }
                                @if viewer.who.has(PlatformRole::OutputChecker) || viewer.who.has(PlatformRole::DataSteward) {
                                    li { a href="/review" { "Review queue" } }
                                }
                                @if viewer.who.has(PlatformRole::Admin) {
                                    li { a href="/admin/templates" { "Templates" } }
                                    li { a href="/admin/audit" { "Audit log" } }
                                }
                            }
                            li { a href="/register" { "Public register" } }
                        }
                    }
                    div.account {
                        @if let Some(viewer) = viewer {
                            span #signed-in-as { (viewer.who.name.as_deref().unwrap_or(&viewer.who.subject)) }
                            form method="post" action="/auth/logout" {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        } @else {
                            a.button href="/auth/login" { "Sign in" }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
                footer.site {
                    p { "Trellis — a Trusted Research Environment. Every action here is recorded in a tamper-evident audit log." }
                }
            }
        }
    }
}

/// A state or phase as a labelled badge; the class gives it a colour, the text says it.
pub fn badge(text: &str) -> Markup {
    let class = match text {
        "Active" | "Running" | "released" | "approved" | "success" | "active" => "badge good",
        "Pending" | "Starting" | "Stopping" | "submitted" | "in_review" | "reviewed" | "draft"
        | "returned" => "badge wait",
        "Failed" | "rejected" | "blocked" | "revoked" | "denied" | "failure" | "expired" => {
            "badge bad"
        }
        _ => "badge",
    };
    html! { span class=(class) { (text.replace('_', " ")) } }
}

/// A byte count for people.
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// An RFC 3339 time shortened to minutes, in UTC.
pub fn when(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// The place a form's error goes, announced to screen readers.
pub fn form_error() -> Markup {
    html! { p.form-error role="alert" hidden {} }
}

/// A path segment, percent-encoded.
pub fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(4 << 30), "4.0 GiB");
    }

    #[test]
    fn times_are_shown_in_utc_minutes() {
        assert_eq!(when("2026-11-22T09:15:42+01:00"), "2026-11-22 08:15 UTC");
        assert_eq!(when("not a time"), "not a time");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("Figure 1.png"), "Figure%201.png");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn badges_say_the_state_in_words() {
        let markup = badge("in_review").into_string();
        assert!(markup.contains("in review"), "{markup}");
        assert!(markup.contains("wait"), "{markup}");
    }
}
