//! Stopping: the signal that ends `serve`, and the order in which what runs
//! beside the service stops after it.

use ta_emulator::Emulator;
use ta_widget_service::server::Stopped;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(super) async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// The longest the open chats are given to end on shutdown.
const CHAT_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Ends the open chats: each visitor's messaging stopped and its meeting
/// terminated upstream, within [`CHAT_GRACE`].
pub(super) async fn end_chats(switchboard: &ta_bootstrap::chat::Switchboard) {
    let open = switchboard.open_chats();
    if open == 0 {
        return;
    }
    tracing::info!(open, "stopping: ending the open chats");
    let left = switchboard.shut_down(CHAT_GRACE).await;
    if left > 0 {
        eprintln!(
            "stopping: {left} chat(s) did not end within {} s",
            CHAT_GRACE.as_secs()
        );
    }
}

/// What runs beside the service and stops once it has: the demo sites
/// (drained), background tasks (aborted) and the embedded emulator.
pub(super) struct Background {
    stop: watch::Sender<bool>,
    sites: Vec<JoinHandle<Stopped>>,
    tasks: Vec<JoinHandle<()>>,
    emulator: Option<Emulator>,
}

impl Background {
    pub(super) fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            sites: Vec::new(),
            tasks: Vec::new(),
            emulator: None,
        }
    }

    /// A future that resolves when the service has stopped: the shutdown
    /// signal of a server that drains with it.
    pub(super) fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopped = self.stop.subscribe();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    }

    /// A server (a demo site) that drains after [`stopped`](Self::stopped).
    pub(super) fn add_site(&mut self, site: JoinHandle<Stopped>) {
        self.sites.push(site);
    }

    /// A task aborted once the service has stopped.
    pub(super) fn add_task(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// The embedded emulator, shut down last.
    pub(super) fn set_emulator(&mut self, emulator: Emulator) {
        self.emulator = Some(emulator);
    }

    /// Stops everything after the service has stopped (`served`), and says
    /// whether connections were dropped.
    pub(super) async fn shut_down(self, served: Stopped) {
        self.stop.send_replace(true);
        for site in self.sites {
            let _ = site.await;
        }
        for task in self.tasks {
            task.abort();
        }
        if let Some(emulator) = self.emulator {
            emulator.shutdown().await;
        }
        if let Stopped::GraceExpired { dropped } = served {
            eprintln!(
                "stopping: {dropped} connection(s) still open after the grace period were dropped"
            );
        }
    }
}
