//! The glue between a world step and the property monitors of [`crate::props`].

use crate::props::{self, ClientInput, PropSet, ServerStep};
use crate::world::{Action, Step, World};

/// Run the step monitors and witnesses of one server step.
pub fn server_monitors(s: ServerStep<'_>, bad: &mut PropSet, seen: &mut PropSet) {
    props::check_server_step(s, bad);
    props::server_witnesses(s, seen);
}

/// Run the step monitors and witnesses of one world step `before --action--> after`.
pub fn step_monitors(
    before: &World,
    action: Action,
    step: &Step,
    after: &World,
    bad: &mut PropSet,
    seen: &mut PropSet,
) {
    if let Some(out) = &step.server {
        let user = match action {
            Action::Expire { user, .. } => user as usize,
            Action::ServerReceives(d) => before.user_of(d),
            _ => unreachable!("invariant: only server actions produce server output"),
        };
        let s = ServerStep {
            before: &before.users[user],
            request: step.request.as_ref().map(|r| &r.env),
            out,
            after: &after.users[user],
        };
        server_monitors(s, bad, seen);
    }
    if let (Some(out), Some(d)) = (&step.client, action.device()) {
        let d = d as usize;
        let dev = &before.devices[d];
        let input = match action {
            Action::Start(_) => ClientInput::Start,
            Action::ClientReceives(_) => match &dev.to_client {
                Some(env) => ClientInput::Message(env),
                None => ClientInput::Other,
            },
            Action::ClientReceivesPush(_) => match dev.pushes.first() {
                Some(env) => ClientInput::Message(env),
                None => ClientInput::Other,
            },
            _ => ClientInput::Other,
        };
        props::check_client_step(&dev.client, input, out, &after.devices[d].client, bad);
        props::client_witnesses(&dev.client, input, out, seen);
    }
}
