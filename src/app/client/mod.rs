//! Commands that talk to a running server over gRPC, for people who are not
//! writing a client: evidence import and correction, assess, recommend,
//! what-if, calibrate, and the oversight commands (explain, decide,
//! oversight, impact).

pub mod calibration;
pub mod chart;
pub mod evidence_correct;
pub mod evidence_import;
pub mod oversight;
pub mod report;
pub mod subjects;
pub mod xapi_import;

use clap::Args;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::app::error::AppError;
use crate::app::tls::ClientTlsArgs;
use crate::proto::v1::assessment_service_client::AssessmentServiceClient;
use crate::proto::v1::calibration_service_client::CalibrationServiceClient;
use crate::proto::v1::framework_service_client::FrameworkServiceClient;
use crate::proto::v1::recommendation_service_client::RecommendationServiceClient;
use crate::proto::v1::xapi_service_client::XapiServiceClient;
use crate::transport::{MAX_DOCUMENT_BYTES, MESSAGE_OVERHEAD};

/// Where the server is and who is calling.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The Ladder server to call.
    #[arg(long, env = "LADDER_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// Bearer token to send (not needed against `serve --dev`).
    #[arg(long, env = "LADDER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub tls: ClientTlsArgs,
}

/// Adds the bearer token, when there is one, to every call.
#[derive(Clone)]
pub struct Bearer(pub Option<tonic::metadata::AsciiMetadataValue>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub type Authed = InterceptedService<Channel, Bearer>;

pub struct Clients {
    pub assessment: AssessmentServiceClient<Authed>,
    pub recommendation: RecommendationServiceClient<Authed>,
    pub calibration: CalibrationServiceClient<Authed>,
    pub framework: FrameworkServiceClient<Authed>,
    pub xapi: XapiServiceClient<Authed>,
}

impl ServerArgs {
    /// A channel to the server that sends the bearer token with every call.
    pub async fn channel(&self) -> Result<Authed, AppError> {
        let mut endpoint = Channel::from_shared(self.server.clone())
            .map_err(|e| AppError::Config(format!("--server {}: {e}", self.server)))?;
        if let Some(tls) = self.tls.client_config(&self.server)? {
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| AppError::Config(format!("--server {}: {e}", self.server)))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| AppError::Config(format!("cannot reach {}: {e}", self.server)))?;
        let bearer = Bearer(
            self.token
                .as_ref()
                .map(|t| format!("Bearer {t}").parse())
                .transpose()
                .map_err(|_| AppError::Config("--token is not printable ASCII".into()))?,
        );
        Ok(InterceptedService::new(channel, bearer))
    }

    pub async fn connect(&self) -> Result<Clients, AppError> {
        let channel = self.channel().await?;
        Ok(Clients {
            assessment: AssessmentServiceClient::new(channel.clone()),
            recommendation: RecommendationServiceClient::new(channel.clone()),
            calibration: CalibrationServiceClient::new(channel.clone()),
            // An exported framework may be as large as an imported one.
            framework: FrameworkServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_DOCUMENT_BYTES + MESSAGE_OVERHEAD),
            xapi: XapiServiceClient::new(channel),
        })
    }
}

/// A status code as the gRPC specification spells it (`INVALID_ARGUMENT`).
fn code_name(code: tonic::Code) -> String {
    let mut name = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// A call's failure, as a person reads it, said once: the code, then the
/// refused fields (`INVALID_ARGUMENT: evidence[3].level: must be ...`),
/// which the status message only repeats, or else the message.
pub fn call_failed(status: tonic::Status) -> AppError {
    use tonic_types::StatusExt;
    let code = code_name(status.code());
    let violations = status
        .get_details_bad_request()
        .map(|bad| bad.field_violations)
        .unwrap_or_default();
    AppError::Config(match violations.as_slice() {
        [] => format!("{code}: {}", status.message()),
        [one] => format!("{code}: {}: {}", one.field, one.description),
        many => many.iter().fold(
            format!("{code}: {} fields refused:", many.len()),
            |said, v| format!("{said}\n  {}: {}", v.field, v.description),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_named_as_grpc_spells_it() {
        assert_eq!(code_name(tonic::Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(tonic::Code::NotFound), "NOT_FOUND");
        assert_eq!(code_name(tonic::Code::Ok), "OK");
    }
}
