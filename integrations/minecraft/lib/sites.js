'use strict'
// Which cells of a generated chunk may hold a treasure (the rules of docs/worlds.md).
const { Vec3 } = require('vec3')

const AIR = 0
const WATER = 1
const OTHER = 2
const SOLID = 3

const AIR_NAMES = new Set(['air', 'cave_air', 'void_air'])
const WATER_NAMES = new Set(['water', 'kelp', 'kelp_plant', 'seagrass', 'tall_seagrass', 'bubble_column'])
const NEVER = new Set(['bedrock', 'lava', 'barrier'])

function classOf (block) {
  if (AIR_NAMES.has(block.name)) return AIR
  if (WATER_NAMES.has(block.name)) return WATER
  if (NEVER.has(block.name) || block.name.endsWith('_leaves')) return OTHER
  // Plants, torches, slabs in the air...: anything that is not a full cube is no floor.
  return block.boundingBox === 'block' ? SOLID : OTHER
}

// One class per block state id, built once per registry.
function classTable (registry) {
  let max = 0
  for (const b of registry.blocksArray) max = Math.max(max, b.maxStateId ?? b.id)
  const table = new Uint8Array(max + 1).fill(OTHER)
  for (const b of registry.blocksArray) {
    const cls = classOf(b)
    const lo = b.minStateId ?? b.id
    const hi = b.maxStateId ?? b.id
    for (let s = lo; s <= hi; s++) table[s] = cls
  }
  return table
}

// The sites of one column (x, z in 0..15) of a chunk as NDJSON text, and their number. A cell is a
// site when it is air (surface or cave) or water (underwater) and the block below it is solid.
function scanColumn (chunk, chunkX, chunkZ, x, z, table, pos = new Vec3(0, 0, 0)) {
  const minY = chunk.minY ?? 0
  const height = chunk.worldHeight ?? 256
  const wx = chunkX * 16 + x
  const wz = chunkZ * 16 + z
  let text = ''
  let n = 0
  pos.x = x
  pos.z = z
  let above = AIR // the cell above the current one
  let covered = false // a solid or water cell somewhere above
  pos.y = minY + height - 1
  let cell = table[chunk.getBlockStateId(pos)] ?? OTHER
  for (let y = minY + height - 1; y > minY; y--) {
    pos.y = y - 1
    const below = table[chunk.getBlockStateId(pos)] ?? OTHER
    if (below === SOLID) {
      if (cell === AIR && above === AIR) {
        text += `{"x":${wx},"y":${y},"z":${wz},"tags":["${covered ? 'cave' : 'surface'}"]}\n`
        n++
      } else if (cell === WATER) {
        text += `{"x":${wx},"y":${y},"z":${wz},"tags":["underwater"]}\n`
        n++
      }
    }
    if (cell === SOLID || cell === WATER) covered = true
    above = cell
    cell = below
  }
  return { text, n }
}

// Every column of a chunk: {cols: [256 NDJSON texts], counts: [256], n}; column index x * 16 + z.
function scanChunk (chunk, chunkX, chunkZ, table) {
  const cols = new Array(256)
  const counts = new Uint16Array(256)
  const pos = new Vec3(0, 0, 0)
  let n = 0
  for (let x = 0; x < 16; x++) {
    for (let z = 0; z < 16; z++) {
      const c = scanColumn(chunk, chunkX, chunkZ, x, z, table, pos)
      cols[x * 16 + z] = c.text
      counts[x * 16 + z] = c.n
      n += c.n
    }
  }
  return { cols, counts, n, text: null }
}

module.exports = { classTable, scanChunk, scanColumn, classOf, AIR, WATER, OTHER, SOLID }
