//! QUOTA (RFC 9208): the quota roots of a mailbox and their usage.

use super::*;

impl ImapClient {
    /// The quota roots of `mb` with their resources: GETQUOTAROOT (RFC 9208 4.3 / RFC 2087
    /// 4.3). `Ok(vec![])` when the server does not announce QUOTA.
    pub fn quota_roots(&mut self, mb: &MailboxInfo) -> Result<Vec<QuotaRoot>, ImapError> {
        if !self.caps.has("QUOTA") {
            return Ok(Vec::new());
        }
        let command = format!("GETQUOTAROOT {}", quote(&mb.wire));
        let (untagged, _) = self.raw_command(
            &command,
            &[Arg::Text("GETQUOTAROOT ".into()), astring(&mb.wire)],
        )?;
        let mut roots: Vec<QuotaRoot> = Vec::new();
        for u in untagged.iter().filter(|u| u.name == "QUOTAROOT") {
            for r in u.values.iter().flatten().skip(1).filter_map(Value::text) {
                if !roots.iter().any(|x| x.name == r) {
                    roots.push(QuotaRoot {
                        name: r,
                        resources: Vec::new(),
                    });
                }
            }
        }
        for u in untagged.iter().filter(|u| u.name == "QUOTA") {
            let Some(values) = u.values.as_deref() else {
                continue;
            };
            let (Some(root), Some(Value::List(list))) =
                (values.first().and_then(Value::text), values.get(1))
            else {
                continue;
            };
            let resources: Vec<QuotaResource> = list
                .chunks(3)
                .filter_map(|c| match c {
                    [name, usage, limit] => Some(QuotaResource {
                        name: name.text()?.to_ascii_uppercase(),
                        usage: usage.number()?,
                        limit: limit.number()?,
                    }),
                    _ => None,
                })
                .collect();
            match roots.iter_mut().find(|x| x.name == root) {
                Some(x) => x.resources.extend(resources),
                None => roots.push(QuotaRoot {
                    name: root,
                    resources,
                }),
            }
        }
        Ok(roots)
    }
}
