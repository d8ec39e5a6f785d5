//! linli-sdk: what plugin authors build action plugins with. The interface's one source is
//! `sdk/wit/`; the guest bindings, the export macro and the test harness arrive with the plugin
//! runtime (see the project's issue tracker). Until then this crate only reserves the name and
//! builds in the workspace.
