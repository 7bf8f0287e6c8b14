//! OTLP/gRPC receiver.

use std::future::Future;

use opentelemetry_proto::tonic::collector::{
    logs::v1::{
        ExportLogsServiceRequest, ExportLogsServiceResponse,
        logs_service_server::{LogsService, LogsServiceServer},
    },
    trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use crate::TraceStore;

struct GrpcReceiver {
    store: TraceStore,
}

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let ingested = self.store.ingest(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: crate::http::partial_success(&ingested),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for GrpcReceiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.store.ingest_logs(request.into_inner());
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

/// Serves OTLP/gRPC (traces and logs) on `listener` until `shutdown` completes.
pub async fn serve_grpc(
    listener: TcpListener,
    store: TraceStore,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(GrpcReceiver {
            store: store.clone(),
        }))
        .add_service(LogsServiceServer::new(GrpcReceiver { store }))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
}
