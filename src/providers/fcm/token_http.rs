//! The token endpoint over HTTPS/1.1 with ureq (blocking, so it runs on a
//! blocking thread), on the same rustls configuration as the FCM
//! connection: ring, the built-in roots plus `capath`. ureq's own rustls
//! setup can only replace the roots, so a small connector wraps its TCP
//! transport with that configuration instead.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use serde::Deserialize;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector,
    Transport, TransportAdapter,
};

use super::oauth::{Exchange, ExchangeError, Grant};

/// The RFC 7523 grant type.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Largest token endpoint answer read.
const MAX_BODY: u64 = 64 * 1024;

/// [`Exchange`] with a real token endpoint.
#[derive(Debug)]
pub struct HttpExchange {
    agent: ureq::Agent,
    url: String,
}

impl HttpExchange {
    /// An exchange with `url`, trusting what `tls` trusts, each request
    /// bounded by `timeout`.
    pub fn new(url: &str, tls: &ClientConfig, timeout: Duration) -> Self {
        let mut tls = tls.clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .https_only(true)
            .proxy(None)
            .max_redirects(0)
            .user_agent(concat!("push-appserver/", env!("CARGO_PKG_VERSION")))
            .build();
        let connector = ().chain(TcpConnector::default()).chain(TlsConnector(Arc::new(tls)));
        HttpExchange {
            agent: ureq::Agent::with_parts(config, connector, DefaultResolver::default()),
            url: url.to_owned(),
        }
    }
}

impl Exchange for HttpExchange {
    fn exchange(&self, assertion: &str) -> Result<Grant, ExchangeError> {
        let mut res = self
            .agent
            .post(&self.url)
            .send_form([("grant_type", GRANT_TYPE), ("assertion", assertion)])
            .map_err(|e| ExchangeError::Transport(e.to_string()))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| ExchangeError::Transport(e.to_string()))?;
        parse_answer(status, &body)
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Reads a token endpoint answer (RFC 6749 section 5).
pub fn parse_answer(status: u16, body: &[u8]) -> Result<Grant, ExchangeError> {
    let answer = serde_json::from_slice::<TokenAnswer>(body).ok();
    if !(200..300).contains(&status) {
        let detail = match answer {
            Some(TokenAnswer {
                error: Some(e),
                error_description,
                ..
            }) => match error_description {
                Some(d) => format!("{e}: {}", d.chars().take(200).collect::<String>()),
                None => e,
            },
            _ => "no OAuth error in the answer".into(),
        };
        return Err(ExchangeError::Status { status, detail });
    }
    let answer = answer.ok_or_else(|| ExchangeError::Malformed("not JSON".into()))?;
    match answer.access_token {
        Some(t) if !t.is_empty() => Ok(Grant {
            access_token: t,
            expires_in: Duration::from_secs(answer.expires_in.unwrap_or(3600).max(1)),
        }),
        _ => Err(ExchangeError::Malformed("no access_token".into())),
    }
}

/// Wraps the TCP transport in TLS with a given rustls configuration.
#[derive(Debug)]
struct TlsConnector(Arc<ClientConfig>);

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| ureq::Error::Tls("invalid TLS server name"))?;
        let mut conn = ClientConnection::new(self.0.clone(), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// A TLS session over ureq's transport.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsTransport")
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_grant() {
        let g = parse_answer(
            200,
            br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(g.access_token, "ya29.x");
        assert_eq!(g.expires_in, Duration::from_secs(3599));
    }

    #[test]
    fn reads_oauth_errors() {
        let e = parse_answer(
            400,
            br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
        )
        .unwrap_err();
        assert_eq!(
            e,
            ExchangeError::Status {
                status: 400,
                detail: "invalid_grant: Invalid JWT Signature.".into()
            }
        );
        assert!(matches!(
            parse_answer(502, b"<html>"),
            Err(ExchangeError::Status { status: 502, .. })
        ));
        assert!(matches!(
            parse_answer(200, b"{}"),
            Err(ExchangeError::Malformed(_))
        ));
    }
}
