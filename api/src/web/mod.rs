//! The web UI: server-rendered pages (maud templates compiled into the binary) for every role,
//! and the public register.
//!
//! Pages read through the same handlers and policy as the JSON API, so a page never shows what
//! the API would refuse. Actions are plain forms that a small same-origin script sends to the
//! JSON API with the session's CSRF token: one implementation of every change, one audit trail.

mod admin;
mod airlock;
mod datashield;
mod home;
mod layout;
pub mod preview;
mod projects;
mod register;
mod review;
pub mod sign_in;
mod tokens;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::Markup;

use crate::app::SharedState;
use crate::identity::extract::ViewerRejection;
use crate::problem::Problem;

/// Pages may run the one script and style sheet served from `/static/`, and talk only to this
/// origin: nothing inline, nothing from elsewhere.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/", get(home::handler))
        .route("/projects", get(projects::list))
        .route("/projects/{project}", get(projects::detail))
        .route("/projects/{project}/airlock/{id}", get(airlock::request))
        .route(
            "/projects/{project}/airlock/{id}/files/{name}",
            get(airlock::view_file),
        )
        .route("/review", get(review::queue))
        .route("/tokens", get(tokens::page_handler))
        .route("/admin/templates", get(admin::templates))
        .route("/admin/audit", get(admin::audit))
        .route("/register", get(register::page_handler))
        .route("/static/trellis.css", get(stylesheet))
        .route("/static/trellis.js", get(script))
        .route("/static/favicon.svg", get(favicon))
}

pub use crate::identity::extract::{MaybeViewer, Viewer};

impl IntoResponse for ViewerRejection {
    fn into_response(self) -> Response {
        match self {
            ViewerRejection::SignIn { return_to } => {
                let target = format!(
                    "/auth/login?return_to={}",
                    url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
                );
                Redirect::to(&target).into_response()
            }
            ViewerRejection::Store(error) => PageError(Problem::from(error), None).into_response(),
        }
    }
}

/// A page that could not be shown: the API's problem, rendered for people.
pub struct PageError(pub Problem, pub Option<Box<Viewer>>);

impl From<Problem> for PageError {
    fn from(problem: Problem) -> Self {
        PageError(problem, None)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(error: crate::store::StoreError) -> Self {
        PageError(error.into(), None)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let PageError(problem, viewer) = self;
        let body = layout::page(
            viewer.as_deref(),
            &problem.title,
            maud::html! {
                h1 { (problem.title) }
                p.problem role="alert" { (problem.detail) }
                p { a href="/" { "Back to the start page" } }
            },
        );
        let mut response = (problem.status_code(), body).into_response();
        set_page_headers(&mut response);
        response
    }
}

/// A problem as a small page of its own, for places outside the site's pages (the gateway).
/// With `retry`, the page reloads itself every few seconds (a workspace that is starting). The
/// way back is to `home`: the page may be on the workspace origin.
pub fn problem_page(problem: Problem, retry: bool, home: &url::Url) -> Response {
    let body = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if retry { meta http-equiv="refresh" content="3"; }
                title { (problem.title) " · Trellis" }
                link rel="stylesheet" href="/static/trellis.css";
            }
            body {
                main #main {
                    h1 { (problem.title) }
                    p.problem role="alert" { (problem.detail) }
                    @if retry { p { "This page tries again every few seconds." } }
                    p { a href=(home.as_str()) { "Back to Trellis" } }
                }
            }
        }
    };
    let mut response = (problem.status_code(), body).into_response();
    set_page_headers(&mut response);
    response
}

pub type PageResult = Result<Response, PageError>;

/// A rendered page with its security headers.
pub fn html(markup: Markup) -> PageResult {
    let mut response = (StatusCode::OK, markup).into_response();
    set_page_headers(&mut response);
    Ok(response)
}

fn set_page_headers(response: &mut Response) {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/trellis.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/trellis.js"),
    )
}

async fn favicon() -> Response {
    asset("image/svg+xml", include_str!("../../static/favicon.svg"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Short: the assets change with the binary and carry no version in their name.
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
