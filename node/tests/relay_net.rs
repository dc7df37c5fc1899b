//! The network's relay flavour (`NetConfig::relay_server`), with real swarms on 127.0.0.1: its
//! gate lets any Ed25519 peer connect (to introduce itself), but its circuit-relay v2 server
//! grants a reservation only to authorized peers, and a peer removed from the authorized set is
//! disconnected.

use std::time::Duration;

use cloison_node::net::{Multiaddr, Net, NetConfig, NetEvent, NetHandle, peer_id};
use cloison_node::trust::{DeviceId, DeviceKeys};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);

struct Peer {
    id: DeviceId,
    h: NetHandle,
    rx: mpsc::Receiver<NetEvent>,
    addr: Multiaddr,
}

async fn start(relay_server: bool) -> Peer {
    let keys = DeviceKeys::generate(&mut rand::rng());
    let (h, mut rx) = Net::start(
        &keys,
        NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            relay_server,
            ..NetConfig::loopback()
        },
    )
    .unwrap();
    let addr = loop {
        if let NetEvent::Listening(a) = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap()
        {
            break a;
        }
    };
    Peer {
        id: keys.id(),
        h,
        rx,
        addr,
    }
}

impl Peer {
    /// Waits for an event `f` picks; `None` if none within `d`.
    async fn wait_for<T>(
        &mut self,
        d: Duration,
        mut f: impl FnMut(&NetEvent) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(ev)) => {
                    if let Some(t) = f(&ev) {
                        return Some(t);
                    }
                }
                _ => return None,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_only_for_authorized_peers_and_removal_disconnects() {
    let mut relay = start(true).await;
    let mut dev = start(false).await;
    dev.h.set_allowed([relay.id].into()).await.unwrap();
    let rp = peer_id(&relay.id).unwrap();
    let circuit: Multiaddr = format!("{}/p2p/{rp}/p2p-circuit", relay.addr)
        .parse()
        .unwrap();
    // Not authorized: the open gate lets it connect, but no reservation is granted.
    dev.h.listen(circuit.clone()).await.unwrap();
    let id = dev.id;
    relay
        .wait_for(WAIT, |e| (*e == NetEvent::Connected(id)).then_some(()))
        .await
        .unwrap();
    let refused = dev
        .wait_for(WAIT, |e| match e {
            NetEvent::Listening(a) if a.to_string().contains("p2p-circuit") => Some(false),
            NetEvent::Error(m) if m.contains("listener") => Some(true),
            _ => None,
        })
        .await;
    assert_eq!(
        refused,
        Some(true),
        "an unauthorized peer got a reservation"
    );
    // Authorized: the reservation is granted.
    relay.h.set_allowed([dev.id].into()).await.unwrap();
    dev.h.listen(circuit).await.unwrap();
    dev.wait_for(WAIT, |e| match e {
        NetEvent::Listening(a) if a.to_string().contains("p2p-circuit") => Some(()),
        _ => None,
    })
    .await
    .unwrap();
    // Removed from the authorized set: disconnected.
    relay.h.set_allowed([].into()).await.unwrap();
    let rid = relay.id;
    dev.wait_for(WAIT, |e| (*e == NetEvent::Disconnected(rid)).then_some(()))
        .await
        .unwrap();
}
