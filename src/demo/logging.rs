//! The demo's log: warnings only unless asked (the table is its output), and none of the
//! built-in broker's noise. rumqttd logs every client's normal disconnect at ERROR
//! (`router-drop error=Recv(Disconnected)`: a client that says DISCONNECT, as the bridge, the
//! table and the broker probe do, has its link dropped by the broker's router, which the link
//! reports as an error, and the router then logs the same disconnect a second time as
//! `no-connection id N is already gone`); a newcomer reads that as a failure. Those events are left out; the
//! broker's other messages stay, and a broker that stops is logged by the demo itself.

use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Leaves out rumqttd's report of a normal disconnect.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietBroker;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Filter<S> for QuietBroker {
    fn enabled(&self, _meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &Context<'_, S>) -> bool {
        if !event.metadata().target().starts_with("rumqttd") {
            return true;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        !fields.normal_disconnect()
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    error: String,
}

impl Fields {
    /// The link's channel closed because the broker dropped the link after the client's
    /// DISCONNECT (`router-drop` with `Recv(Disconnected)`), and the router's second look at
    /// the same disconnect, the packet's and the connection's (`no-connection id 3 is already
    /// gone`; rumqttd's own comment calls the double event normal).
    fn normal_disconnect(&self) -> bool {
        (self.message == "router-drop" && self.error == "Recv(Disconnected)")
            || (self.message.starts_with("no-connection id ") && self.message.ends_with(" is already gone"))
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "error" => self.error = format!("{value:?}"),
            _ => {}
        }
    }
}

/// The demo's subscriber: `RUST_LOG` if set, else `warn` and `bandwidth2mqtt=<level>`, to
/// `writer`, without rumqttd's normal disconnects.
pub fn subscriber<W>(level: &str, writer: W, ansi: bool) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::Layer;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,bandwidth2mqtt={level}")));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false)
        .with_filter(QuietBroker);
    tracing_subscriber::registry().with(filter).with(layer)
}
