//! Task events to containerd: each one an Envelope forwarded over
//! containerd's ttrpc socket (`ADDRESS.ttrpc`), as containerd's shims do.

use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskPaused, TaskResumed,
    TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{MessageDyn, MessageField};
use containerd_shim_protos::shim::{event::Envelope, events::ForwardRequest};
use containerd_shim_protos::ttrpc::context::Context;
use containerd_shim_protos::{topics, Client, EventsClient};

/// A ttrpc client of containerd's Events service.
pub struct Publisher {
    client: EventsClient,
    namespace: String,
}

impl Publisher {
    /// Connects to `unix://PATH` or `PATH`.
    pub fn connect(address: &str, namespace: &str) -> Result<Publisher, String> {
        use std::os::fd::IntoRawFd;
        let path = address.strip_prefix("unix://").unwrap_or(address);
        let sock = std::os::unix::net::UnixStream::connect(path)
            .map_err(|e| format!("connect {path}: {e}"))?;
        let client = Client::new(sock.into_raw_fd()).map_err(|e| format!("{path}: {e}"))?;
        Ok(Publisher {
            client: EventsClient::new(client),
            namespace: namespace.into(),
        })
    }

    /// Forwards one event under `topic`; a failure is logged, not fatal.
    fn publish(&self, topic: &str, ev: &dyn MessageDyn) {
        let mut any = Any::new();
        any.type_url = ev.descriptor_dyn().full_name().to_string();
        if let Err(e) = ev.write_to_vec_dyn(&mut any.value) {
            log::warn!("encode {topic}: {e}");
            return;
        }
        let req = ForwardRequest {
            envelope: MessageField::some(Envelope {
                timestamp: MessageField::some(Timestamp::now()),
                namespace: self.namespace.clone(),
                topic: topic.into(),
                event: MessageField::some(any),
                ..Default::default()
            }),
            ..Default::default()
        };
        if let Err(e) = self.client.forward(Context::default(), &req) {
            log::warn!("publish {topic}: {e}");
        }
    }

    pub fn create(&self, ev: TaskCreate) {
        self.publish(topics::TASK_CREATE_EVENT_TOPIC, &ev)
    }
    pub fn start(&self, ev: TaskStart) {
        self.publish(topics::TASK_START_EVENT_TOPIC, &ev)
    }
    pub fn exit(&self, ev: TaskExit) {
        self.publish(topics::TASK_EXIT_EVENT_TOPIC, &ev)
    }
    pub fn delete(&self, ev: TaskDelete) {
        self.publish(topics::TASK_DELETE_EVENT_TOPIC, &ev)
    }
    pub fn exec_added(&self, ev: TaskExecAdded) {
        self.publish(topics::TASK_EXEC_ADDED_EVENT_TOPIC, &ev)
    }
    pub fn exec_started(&self, ev: TaskExecStarted) {
        self.publish(topics::TASK_EXEC_STARTED_EVENT_TOPIC, &ev)
    }
    pub fn paused(&self, ev: TaskPaused) {
        self.publish(topics::TASK_PAUSED_EVENT_TOPIC, &ev)
    }
    pub fn resumed(&self, ev: TaskResumed) {
        self.publish(topics::TASK_RESUMED_EVENT_TOPIC, &ev)
    }
}
