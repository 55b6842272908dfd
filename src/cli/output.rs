//! How client commands print: `--format json` prints the server's objects; `table` prints for people.

use super::Format;
use crate::client::{History, PacketList};
use crate::packets::model::Packet;
use crate::packets::verification::{Policy, Verification};
use crate::verify::Outcome;

pub fn packet(packet: &Packet, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(packet)?);
        return Ok(());
    }
    let meta = &packet.metadata;
    let rows = [
        ("ID", packet.id.to_string()),
        ("Status", packet.status.as_str().to_string()),
        ("Priority", meta.priority.as_str().to_string()),
        (
            "Source",
            format!("{} ({})", meta.source_agent.id, meta.source_agent.name),
        ),
        (
            "Target",
            format!("{} ({})", meta.target_agent.id, meta.target_agent.name),
        ),
        ("Summary", clip(&packet.context.summary, 100)),
        ("Tags", meta.tags.join(", ")),
        ("Created", packet.created_at.to_string()),
        ("Updated", packet.updated_at.to_string()),
    ];
    for (label, value) in rows {
        println!("{label:<9} {value}");
    }
    if let Some(verification) = &packet.verification {
        println!("{:<9} {}", "Verdict", verdict(verification));
        for claim in verification
            .per_claim
            .iter()
            .filter(|claim| claim.result != Outcome::Pass)
        {
            println!(
                "{:<9} claim {} ({}): {} {}{}",
                "",
                claim.index,
                claim.action_name.as_deref().unwrap_or("no action"),
                claim.result.as_str(),
                claim.reason.as_str(),
                claim
                    .detail
                    .as_deref()
                    .map(|detail| format!(" — {}", clip(detail, 120)))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(hitl) = &packet.hitl {
        println!("{:<9} {}", "HITL", hitl.reason);
        if let Some(response) = &hitl.response {
            println!(
                "{:<9} {} (by {})",
                "Response",
                response,
                hitl.responded_by.as_deref().unwrap_or("?")
            );
        }
    }
    Ok(())
}

pub fn packet_list(list: &PacketList, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(list)?);
        return Ok(());
    }
    println!(
        "{:<36}  {:<14}  {:<8}  {:<7}  SOURCE → TARGET",
        "ID", "STATUS", "PRIORITY", "VERDICT"
    );
    for packet in &list.packets {
        println!(
            "{:<36}  {:<14}  {:<8}  {:<7}  {} → {}",
            packet.id,
            packet.status.as_str(),
            packet.metadata.priority.as_str(),
            packet
                .verification
                .as_ref()
                .map_or("-", |verification| verification.outcome.as_str()),
            packet.metadata.source_agent.id,
            packet.metadata.target_agent.id
        );
    }
    println!(
        "Showing {} of {} (offset={}, limit={})",
        list.packets.len(),
        list.total,
        list.offset,
        list.limit
    );
    if let Some(cursor) = &list.next_cursor {
        println!("Next page: --cursor {cursor}");
    }
    Ok(())
}

pub fn history(history: &History, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(history)?);
        return Ok(());
    }
    println!(
        "{:<27}  {:<15}  {:<24}  DETAILS",
        "TIMESTAMP", "EVENT", "ACTOR"
    );
    for event in &history.events {
        println!(
            "{:<27}  {:<15}  {:<24}  {}",
            event.timestamp.to_string(),
            event.event_type,
            event.actor,
            clip(&event.details.to_string(), 60)
        );
    }
    println!("{} events", history.events.len());
    Ok(())
}

/// `CAUGHT (1 pass, 1 caught, 0 error; policy hold; evaluation <id>)`.
fn verdict(verification: &Verification) -> String {
    let counts = verification.counts;
    let policy = Policy::name(verification.policy);
    format!(
        "{} ({} pass, {} caught, {} error; policy {policy}; evaluation {})",
        verification.outcome.as_str(),
        counts.pass,
        counts.caught,
        counts.error,
        verification.evaluation_id
    )
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
        clipped.push('…');
        clipped
    }
}
