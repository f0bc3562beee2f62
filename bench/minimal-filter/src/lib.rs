//! Reads one request header and continues: what every proxy-wasm filter costs at least.
//! With the configuration `hold_body` it also holds each request until its body is complete,
//! as any filter must that verifies the body before the upstream sees the request.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root { hold_body: false }));
}}

struct Root {
    hold_body: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        self.hold_body = self
            .get_plugin_configuration()
            .is_some_and(|config| config.starts_with(b"hold_body"));
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Minimal {
            hold_body: self.hold_body,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Minimal {
    hold_body: bool,
}

impl Context for Minimal {}

impl HttpContext for Minimal {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        let _ = self.get_http_request_header_bytes("x-vobiz-signature-v3");
        if self.hold_body && !end_of_stream {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_request_body(&mut self, _: usize, end_of_stream: bool) -> Action {
        if self.hold_body && !end_of_stream {
            Action::Pause
        } else {
            Action::Continue
        }
    }
}
