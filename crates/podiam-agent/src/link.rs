//! `podiam agent setup-link`: the reference agent's `initialize`, over netlink. A dummy link
//! `pod-id-link0` carrying 169.254.170.23/32 and fd00:ec2::23/128, up, with a main-table route
//! per address to it. Idempotent: what exists is left alone; a route to another interface is an
//! error; an IPv6 failure is only logged (IPv6 may be off). Kernels without the dummy driver
//! get a port-less bridge of the same name, which holds local addresses just as well.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt as _;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::{Handle, LinkBridge, LinkDummy, LinkUnspec, RouteMessageBuilder};
use thiserror::Error;

/// The link's name.
pub const LINK_NAME: &str = "pod-id-link0";

/// The agent's IPv4 address.
pub const AGENT_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 23);

/// The agent's IPv6 address.
pub const AGENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x23);

/// The instance metadata service's IPv4 address.
pub const IMDS_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// The instance metadata service's IPv6 address.
pub const IMDS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254);

/// The main routing table.
const MAIN_TABLE: u32 = 254;

/// `EOPNOTSUPP`: the kernel has no such link type.
const EOPNOTSUPP: i32 = 95;

/// `EEXIST`.
const EEXIST: i32 = 17;

/// What went wrong setting the link up.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Netlink refused (not privileged: `CAP_NET_ADMIN` is needed; or IPv6 is off).
    #[error("{what}: {source}{}", privilege_hint(source))]
    Netlink {
        /// What was being done.
        what: String,
        /// The netlink error.
        source: rtnetlink::Error,
    },
    /// The netlink socket could not be opened.
    #[error("cannot open a netlink socket: {0}")]
    Socket(std::io::Error),
    /// A route to the address exists through another interface.
    #[error("a route to {address} exists through interface {interface}, not {LINK_NAME}")]
    ForeignRoute {
        /// The address.
        address: IpAddr,
        /// The interface index it goes through.
        interface: u32,
    },
}

/// What setup-link did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LinkReport {
    /// The link's kind: `dummy`, or `bridge` where the kernel lacks the dummy driver.
    pub kind: String,
    /// Steps taken (empty when everything was in place).
    pub changed: Vec<String>,
    /// Problems that were only logged (IPv6).
    pub warnings: Vec<String>,
}

/// A hint for `EPERM`: the one error that means "not privileged".
fn privilege_hint(e: &rtnetlink::Error) -> &'static str {
    if errno(e) == Some(1) {
        " (setup-link needs CAP_NET_ADMIN)"
    } else {
        ""
    }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(message) => message.code.map(|c| -c.get()),
        _ => None,
    }
}

fn netlink(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> LinkError {
    let what = what.into();
    move |source| LinkError::Netlink { what, source }
}

async fn link_index(handle: &Handle) -> Result<Option<(u32, String)>, LinkError> {
    let mut links = handle
        .link()
        .get()
        .match_name(LINK_NAME.to_owned())
        .execute();
    match links.try_next().await {
        Ok(Some(message)) => {
            let kind = message
                .attributes
                .iter()
                .find_map(|a| match a {
                    rtnetlink::packet_route::link::LinkAttribute::LinkInfo(infos) => {
                        infos.iter().find_map(|i| match i {
                            rtnetlink::packet_route::link::LinkInfo::Kind(k) => Some(k.to_string()),
                            _ => None,
                        })
                    }
                    _ => None,
                })
                .unwrap_or_default();
            Ok(Some((message.header.index, kind)))
        }
        Ok(None) => Ok(None),
        // "No such device" is how the kernel says the link is not there.
        Err(e) if errno(&e) == Some(19) => Ok(None),
        Err(e) => Err(netlink(format!("looking up {LINK_NAME}"))(e)),
    }
}

async fn has_address(handle: &Handle, index: u32, address: IpAddr) -> Result<bool, LinkError> {
    let mut addresses = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .set_address_filter(address)
        .execute();
    Ok(addresses
        .try_next()
        .await
        .map_err(netlink("listing addresses"))?
        .is_some())
}

fn route_of(message: &RouteMessage) -> (Option<IpAddr>, Option<u32>, u32) {
    let mut destination = None;
    let mut oif = None;
    let mut table = u32::from(message.header.table);
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                destination = Some(IpAddr::V4(*ip));
            }
            RouteAttribute::Destination(RouteAddress::Inet6(ip)) => {
                destination = Some(IpAddr::V6(*ip));
            }
            RouteAttribute::Oif(index) => oif = Some(*index),
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    (destination, oif, table)
}

/// The interface a main-table host route to `address` goes through, if there is one.
async fn existing_route(handle: &Handle, address: IpAddr) -> Result<Option<u32>, LinkError> {
    let request = match address {
        IpAddr::V4(_) => RouteMessageBuilder::<Ipv4Addr>::new().build(),
        IpAddr::V6(_) => RouteMessageBuilder::<Ipv6Addr>::new().build(),
    };
    let full = match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let mut routes = handle.route().get(request).execute();
    while let Some(route) = routes.try_next().await.map_err(netlink("listing routes"))? {
        let (destination, oif, table) = route_of(&route);
        if destination == Some(address)
            && route.header.destination_prefix_length == full
            && table == MAIN_TABLE
        {
            return Ok(oif);
        }
    }
    Ok(None)
}

async fn ensure_address(
    handle: &Handle,
    index: u32,
    address: IpAddr,
    report: &mut LinkReport,
) -> Result<(), LinkError> {
    let prefix = if address.is_ipv4() { 32 } else { 128 };
    if !has_address(handle, index, address).await? {
        let mut add = handle.address().add(index, address, prefix);
        if address.is_ipv6() {
            // No duplicate address detection: the address is usable (bindable) at once, not
            // "tentative" for a second or two, and nothing else may own it on this host anyway.
            add.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match add.execute().await {
            Ok(()) => report.changed.push(format!("added {address}/{prefix}")),
            Err(e) if errno(&e) == Some(EEXIST) => {}
            Err(e) => return Err(netlink(format!("adding {address}/{prefix}"))(e)),
        }
    }
    match existing_route(handle, address).await? {
        Some(oif) if oif == index => {}
        Some(other) => {
            return Err(LinkError::ForeignRoute {
                address,
                interface: other,
            });
        }
        None => {
            let route = match address {
                IpAddr::V4(v4) => RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(v4, 32)
                    .output_interface(index)
                    .build(),
                IpAddr::V6(v6) => RouteMessageBuilder::<Ipv6Addr>::new()
                    .destination_prefix(v6, 128)
                    .output_interface(index)
                    .build(),
            };
            match handle.route().add(route).execute().await {
                Ok(()) => report
                    .changed
                    .push(format!("routed {address} to {LINK_NAME}")),
                Err(e) if errno(&e) == Some(EEXIST) => {}
                Err(e) => return Err(netlink(format!("routing {address}"))(e)),
            }
        }
    }
    Ok(())
}

/// Sets the link up in the current network namespace; with `imds`, it also carries the
/// instance metadata addresses (169.254.169.254, fd00:ec2::254) for `--imds-listen`.
pub async fn setup_link(imds: bool) -> Result<LinkReport, LinkError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(LinkError::Socket)?;
    tokio::spawn(connection);
    let mut report = LinkReport::default();
    let (index, kind) = match link_index(&handle).await? {
        Some(found) => found,
        None => {
            match handle
                .link()
                .add(LinkDummy::new(LINK_NAME).build())
                .execute()
                .await
            {
                Ok(()) => report
                    .changed
                    .push(format!("created dummy link {LINK_NAME}")),
                Err(e) if errno(&e) == Some(EOPNOTSUPP) => {
                    let warning = format!(
                        "this kernel has no dummy link driver; {LINK_NAME} is a bridge without ports instead"
                    );
                    tracing::warn!("{warning}");
                    report.warnings.push(warning);
                    handle
                        .link()
                        .add(LinkBridge::new(LINK_NAME).build())
                        .execute()
                        .await
                        .map_err(netlink(format!("creating {LINK_NAME}")))?;
                    report
                        .changed
                        .push(format!("created bridge link {LINK_NAME}"));
                }
                Err(e) if errno(&e) == Some(EEXIST) => {}
                Err(e) => return Err(netlink(format!("creating {LINK_NAME}"))(e)),
            }
            link_index(&handle)
                .await?
                .ok_or_else(|| LinkError::Netlink {
                    what: format!("{LINK_NAME} vanished after it was created"),
                    source: rtnetlink::Error::RequestFailed,
                })?
        }
    };
    report.kind = kind;
    ensure_address(&handle, index, IpAddr::V4(AGENT_V4), &mut report).await?;
    if imds {
        ensure_address(&handle, index, IpAddr::V4(IMDS_V4), &mut report).await?;
    }
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(netlink(format!("bringing {LINK_NAME} up")))?;
    let v6: &[Ipv6Addr] = if imds {
        &[AGENT_V6, IMDS_V6]
    } else {
        &[AGENT_V6]
    };
    for address in v6 {
        if let Err(e) = ensure_address(&handle, index, IpAddr::V6(*address), &mut report).await {
            let warning = format!("IPv6 is not set up (is it disabled?): {e}");
            tracing::warn!("{warning}");
            report.warnings.push(warning);
        }
    }
    Ok(report)
}
