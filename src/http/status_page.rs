//! `/push_appserver/v1/status`: the page an operator opens to see whether
//! push works, served to `[http] status_from` (loopback by default). A verdict first (working, or what to look at), then the
//! links, the apps with their latest success and error, the registrations
//! and the store. Served without `debugging`; it names no device, node,
//! token or secret, but shows traffic, so it is not for strangers. A small script re-reads the JSON health
//! every 10 s, so an open tab keeps telling the truth.

use super::snapshot::Snapshot;
use crate::clock::rfc3339_ms;
use crate::metrics::PushResult;
use crate::xml::escape;

/// How often an open page re-reads `/health`.
const REFRESH_MS: u32 = 10_000;

fn time(ms: u64) -> String {
    if ms == 0 {
        return "never".to_owned();
    }
    rfc3339_ms(ms)
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// The verdict line.
fn verdict(status: &str) -> String {
    match status {
        "ok" => "Push is working".to_owned(),
        other => format!("Push needs attention: {other}"),
    }
}

/// The whole page.
pub fn page(s: &Snapshot) -> String {
    let status = s.status();
    let mut b = String::new();
    b.push_str(&format!(
        "<p id='verdict' class='{}'>{}</p>\n",
        if status == "ok" { "ok" } else { "bad" },
        escape(&verdict(status))
    ));
    b.push_str("<ul id='problems'>\n");
    for p in s.problems() {
        b.push_str(&format!("<li>{}</li>\n", escape(&p)));
    }
    b.push_str("</ul>\n");
    b.push_str(&format!(
        "<p>push-appserver {}, up {}. <span id='checked'>As of page load.</span></p>\n",
        escape(s.version),
        duration(s.uptime_secs)
    ));

    b.push_str("<h2>Component links</h2>\n<table>\n<tr><th>component</th><th>link</th><th>connects</th><th>stanzas</th><th>last error</th></tr>\n");
    for l in &s.links {
        b.push_str(&format!(
            "<tr class='link'><td>{}</td><td class='{}'>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&l.jid),
            if l.state == "connected" { "ok" } else { "bad" },
            l.state,
            l.connects,
            l.stanzas,
            escape(l.last_error.as_deref().unwrap_or(""))
        ));
    }
    b.push_str("</table>\n");

    b.push_str("<h2>Apps</h2>\n<table>\n<tr><th>app</th><th>provider</th>");
    for r in PushResult::ALL {
        b.push_str(&format!("<th>{}</th>", r.label().replace('_', " ")));
    }
    b.push_str("<th>last success</th><th>last error</th></tr>\n");
    for a in &s.apps {
        let class = if a.failing() || a.log_only {
            "bad"
        } else {
            "ok"
        };
        b.push_str(&format!(
            "<tr class='app'><td class='{class}'>{}</td><td>{}</td>",
            escape(&a.name),
            escape(a.provider.as_deref().unwrap_or("-"))
        ));
        for n in a.outcomes {
            b.push_str(&format!("<td>{n}</td>"));
        }
        let error = a
            .last_error
            .as_ref()
            .map(|(ms, why)| format!("{} {}", time(*ms), why))
            .unwrap_or_default();
        b.push_str(&format!(
            "<td>{}</td><td>{}</td></tr>\n",
            time(a.last_success_ms),
            escape(&error)
        ));
    }
    b.push_str("</table>\n");

    b.push_str("<h2>Store</h2>\n<ul>\n");
    b.push_str(&format!(
        "<li id='registrations'>registrations: {}</li>\n",
        s.registrations.map_or_else(
            || "unknown (the store cannot be read)".to_owned(),
            |n| n.to_string()
        )
    ));
    b.push_str(&format!(
        "<li>writes: {}</li>\n</ul>\n",
        escape(s.store_error.as_deref().map_or("ok", |_| "FAILING"))
    ));
    b.push_str(&format!("<script>{}</script>\n", script()));
    format!(
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\
         <meta name='viewport' content='width=device-width'>\
         <title>push-appserver status</title><style>{STYLE}</style></head>\
         <body><h1>push-appserver status</h1>\n{b}</body></html>\n"
    )
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;max-width:70em}\
    table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
    .ok{color:#060}.bad{color:#a00;font-weight:bold}#verdict{font-size:1.4em}";

/// Re-reads the JSON health and updates the verdict and the problems.
fn script() -> String {
    format!(
        "(function(){{\
         var verdict=document.getElementById('verdict'),problems=document.getElementById('problems'),\
         checked=document.getElementById('checked');\
         function show(doc){{\
         verdict.textContent=doc.status==='ok'?'Push is working':'Push needs attention: '+doc.status;\
         verdict.className=doc.status==='ok'?'ok':'bad';\
         problems.textContent='';\
         (doc.problems||[]).forEach(function(p){{var li=document.createElement('li');li.textContent=p;problems.appendChild(li);}});\
         checked.textContent='Live: checked '+new Date().toISOString().slice(11,19)+' UTC.';\
         }}\
         function poll(){{\
         fetch('health',{{headers:{{'Accept':'application/json'}},cache:'no-store'}})\
         .then(function(r){{if(r.status!==200&&r.status!==503){{throw new Error('HTTP '+r.status);}}return r.json();}}).then(show)\
         .catch(function(e){{verdict.textContent='The server does not answer as it should ('+e.message+')';verdict.className='bad';\
         checked.textContent='Live: no good answer at '+new Date().toISOString().slice(11,19)+' UTC.';}});\
         }}\
         poll();setInterval(poll,{REFRESH_MS});\
         }})();"
    )
}
