"""The embedded default model: a small K2-architecture model trained by openk2 and shipped in the
package, so that the whole system (engine, server, chat protocol, swarm) runs offline.

Modules: `tools` (its calculator/file/key-value tools as agent tools over a `ToolWorld`),
`profiles` (the runtime strings its training chats must match), `corpus` (the seeded training
mixture and held-out tasks).
"""
