//! `GET /openapi.json`: an OpenAPI 3.1 document generated from the Rust types (utoipa).

use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ekyc-liveness",
        description = "eKYC face check: quality gate + passive liveness. liveness_score is the probability that the face is LIVE (the Python prototype's was the spoof probability)."
    ),
    paths(
        super::liveness,
        super::health,
        super::uploads::create,
        super::uploads::result,
        super::sessions::create,
        super::sessions::verify,
        super::sessions::result,
        super::face_match::match_images,
        super::face_match::session_match
    ),
    components(schemas(
        super::LivenessResponse,
        super::Health,
        super::uploads::CreateUpload,
        super::uploads::UploadCreated,
        super::uploads::PresignedUpload,
        super::uploads::ResultPending,
        super::sessions::SessionCreated,
        super::sessions::SessionVerdict,
        super::face_match::MatchResponse,
        super::face_match::SessionMatchResponse,
        super::error::ErrorBody,
        super::error::ErrorDetail
    ))
)]
pub struct ApiDoc;

/// The document, as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
