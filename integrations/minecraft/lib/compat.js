'use strict'
// Work-arounds for flying-squid 1.12.0 on Minecraft 1.21.4, applied by the launcher.

// From 1.21.2 on, entity_teleport carries a velocity and relative-move flags that flying-squid does
// not fill in. Without them the packet cannot be written and the watching player is disconnected
// whenever another player moves more than a few blocks at once (a /tp, a respawn).
function patchClient (client) {
  const write = client.write.bind(client)
  client.write = (name, params) => {
    if (name === 'entity_teleport' && params && params.flags === undefined) {
      params = { dx: 0, dy: 0, dz: 0, ...params, flags: {}, yaw: params.yaw ?? 0, pitch: params.pitch ?? 0 }
    }
    return write(name, params)
  }
}

// In creative mode a block breaks when digging starts, and a vanilla server ignores the client's
// "finish digging" that follows. flying-squid handles both packets at once and breaks the block twice
// (the second time as in survival, dropping it as an item).
function patchCreativeDigging (player) {
  const client = player._client
  const emit = client.emit.bind(client)
  client.emit = (event, packet, ...rest) => {
    if (event === 'block_dig' && player.gameMode === 1 && packet && packet.status === 2) return false
    return emit(event, packet, ...rest)
  }
}

function apply (serv) {
  serv.on('newPlayer', (player) => {
    if (serv.registry.version['>=']('1.21.2')) patchClient(player._client)
    patchCreativeDigging(player)
  })
}

module.exports = { apply }
