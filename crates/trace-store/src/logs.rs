//! Log records received over OTLP, kept beside the spans so a trace can be read with its log
//! lines: [`LogBook`] holds at most a fixed number of records (the oldest go first) and finds
//! a trace's records by its id.

use std::collections::{BTreeMap, VecDeque};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

use crate::store::{AttributeValue, hex, resource_and_service, value};

/// The default capacity of the log book, in records.
pub const DEFAULT_MAX_LOGS: usize = 100_000;

/// A log record as received, flattened: ids in lowercase hex (empty when the line was written
/// outside any span), the service name of its resource, the body as text.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredLog {
    /// When the line was written, nanoseconds since the Unix epoch (the observed time if the
    /// record has none).
    pub time_unix_nano: u64,
    /// `service.name` of the resource.
    pub service_name: String,
    /// `INFO`, `WARN`, … as sent.
    pub severity_text: String,
    /// The body: the log line's message.
    pub body: String,
    /// 32 hex digits, or empty.
    pub trace_id: String,
    /// 16 hex digits, or empty.
    pub span_id: String,
    /// The line's other fields, as text.
    pub attributes: BTreeMap<String, String>,
}

/// The bounded list of records.
#[derive(Debug)]
pub(crate) struct LogBook {
    records: VecDeque<StoredLog>,
    max: usize,
    pub(crate) evicted: u64,
}

impl LogBook {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            records: VecDeque::new(),
            max,
            evicted: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Adds every record of `request`; returns how many.
    pub(crate) fn ingest(&mut self, request: ExportLogsServiceRequest) -> usize {
        let mut stored = 0;
        for resource_logs in request.resource_logs {
            let (_, service_name) = resource_and_service(resource_logs.resource);
            for scope_logs in resource_logs.scope_logs {
                for record in scope_logs.log_records {
                    let time = match record.time_unix_nano {
                        0 => record.observed_time_unix_nano,
                        t => t,
                    };
                    self.records.push_back(StoredLog {
                        time_unix_nano: time,
                        service_name: service_name.clone(),
                        severity_text: record.severity_text,
                        body: text(value(record.body)),
                        trace_id: hex(&record.trace_id),
                        span_id: hex(&record.span_id),
                        attributes: record
                            .attributes
                            .into_iter()
                            .map(|kv| (kv.key, text(value(kv.value))))
                            .collect(),
                    });
                    stored += 1;
                }
            }
        }
        while self.records.len() > self.max {
            self.records.pop_front();
            self.evicted += 1;
        }
        stored
    }

    /// The records of `service`, in time order.
    pub(crate) fn of_service(&self, service: &str) -> Vec<StoredLog> {
        self.records
            .iter()
            .filter(|r| r.service_name == service)
            .cloned()
            .collect()
    }

    /// The records of `trace_id`, in time order.
    pub(crate) fn of_trace(&self, trace_id: &str) -> Vec<StoredLog> {
        let mut found: Vec<StoredLog> = self
            .records
            .iter()
            .filter(|r| r.trace_id == trace_id)
            .cloned()
            .collect();
        found.sort_by_key(|r| r.time_unix_nano);
        found
    }
}

fn text(value: AttributeValue) -> String {
    match value {
        AttributeValue::String(s) | AttributeValue::Other(s) => s,
        AttributeValue::Int(i) => i.to_string(),
        AttributeValue::Double(d) => d.to_string(),
        AttributeValue::Bool(b) => b.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::{
        common::v1::{AnyValue, KeyValue, any_value},
        logs::v1::{LogRecord, ResourceLogs, ScopeLogs},
        resource::v1::Resource,
    };

    use super::*;

    fn request(bodies: &[(&str, [u8; 16])]) -> ExportLogsServiceRequest {
        let string = |s: &str| {
            Some(AnyValue {
                value: Some(any_value::Value::StringValue(s.to_owned())),
            })
        };
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: string("inventory-service"),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: bodies
                        .iter()
                        .enumerate()
                        .map(|(i, (body, trace))| LogRecord {
                            time_unix_nano: 10 - i as u64,
                            severity_text: "INFO".into(),
                            body: string(body),
                            trace_id: trace.to_vec(),
                            span_id: vec![7; 8],
                            attributes: vec![KeyValue {
                                key: "item".into(),
                                value: string("book"),
                                ..Default::default()
                            }],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn a_traces_records_come_back_flattened_in_time_order_and_the_oldest_go_first() {
        let mut book = LogBook::new(3);
        let stored = book.ingest(request(&[
            ("first", [1; 16]),
            ("stock reserved", [2; 16]),
            ("order created", [2; 16]),
        ]));
        assert_eq!(stored, 3);
        let trace = "02".repeat(16);
        let found = book.of_trace(&trace);
        assert_eq!(
            found.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
            ["order created", "stock reserved"],
            "sorted by time"
        );
        assert_eq!(found[0].service_name, "inventory-service");
        assert_eq!(found[0].span_id, "07".repeat(8));
        assert_eq!(found[0].attributes["item"], "book");
        book.ingest(request(&[("later", [3; 16])]));
        assert_eq!(book.len(), 3);
        assert_eq!(book.evicted, 1);
        assert!(
            book.of_trace(&"01".repeat(16)).is_empty(),
            "the oldest went first"
        );
    }
}
