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

/// Rendezvous: a peer the relay has not admitted can neither register nor discover (its
/// requests reach no server); once admitted to the organization (and reconnected: a connection
/// refused once stays refused) it discovers the registered device and dials it directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendezvous_serves_admitted_devices_only() {
    let relay = start(true).await;
    let mut a = start(false).await;
    let mut s = start(false).await;
    let org = [7u8; 32];
    let ns = cloison_node::net::rendezvous::namespace_of(&org);
    let rp = peer_id(&relay.id).unwrap();
    let relay_addr: Multiaddr = format!("{}/p2p/{rp}", relay.addr).parse().unwrap();
    a.h.set_allowed([relay.id, s.id].into()).await.unwrap();
    s.h.set_allowed([relay.id, a.id].into()).await.unwrap();
    relay
        .h
        .set_rendezvous_orgs([(a.id, org)].into())
        .await
        .unwrap();
    for p in [&mut a, &mut s] {
        p.h.dial(relay_addr.clone()).await.unwrap();
        let r = relay.id;
        p.wait_for(WAIT, |e| (*e == NetEvent::Connected(r)).then_some(()))
            .await
            .expect("connected to the relay");
    }
    a.h.rendezvous_register(relay.id, ns.clone()).await.unwrap();
    // The stranger registers and discovers: refused, so nobody dials anybody.
    s.h.rendezvous_register(relay.id, ns.clone()).await.unwrap();
    s.h.rendezvous_discover(relay.id, ns.clone()).await.unwrap();
    a.h.rendezvous_discover(relay.id, ns.clone()).await.unwrap();
    let aid = a.id;
    let sid = s.id;
    assert!(
        s.wait_for(Duration::from_secs(4), |e| (*e == NetEvent::Connected(aid))
            .then_some(()))
            .await
            .is_none(),
        "a stranger discovered a device through the relay"
    );
    assert!(!a.h.peers().await.unwrap().contains(&sid));
    // Admitted (a new connection): it now finds the device and connects to it directly.
    relay
        .h
        .set_rendezvous_orgs([(a.id, org), (s.id, org)].into())
        .await
        .unwrap();
    relay.h.disconnect(s.id).await.unwrap();
    let r = relay.id;
    s.wait_for(WAIT, |e| (*e == NetEvent::Disconnected(r)).then_some(()))
        .await
        .expect("disconnected from the relay");
    s.h.dial(relay_addr.clone()).await.unwrap();
    s.wait_for(WAIT, |e| (*e == NetEvent::Connected(r)).then_some(()))
        .await
        .expect("connected to the relay again");
    s.h.rendezvous_discover(relay.id, ns.clone()).await.unwrap();
    s.wait_for(WAIT, |e| (*e == NetEvent::Connected(aid)).then_some(()))
        .await
        .expect("the admitted device found the registered one");
}
