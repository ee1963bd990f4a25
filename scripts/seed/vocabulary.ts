// The words the seeder builds names from: category names with their search terms, query phrasings,
// item brands and adjectives, user names. Rows pick from these lists by index, so editing a list
// changes the data every --seed produces (reproducibility holds for one version of this file).

const CATALOG: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['electronics', ['wireless headphones', 'laptop', 'smartphone', '4k tv', 'bluetooth speaker', 'usb c charger', 'smartwatch', 'tablet']],
  ['books', ['mystery novel', 'cookbook', 'fantasy series', 'biography', 'self help book', 'science fiction', 'history book', 'poetry']],
  ['clothing', ['winter jacket', 'jeans', 't-shirt', 'summer dress', 'hoodie', 'raincoat', 'wool sweater', 'chinos']],
  ['shoes', ['running shoes', 'sneakers', 'hiking boots', 'sandals', 'loafers', 'slippers', 'trail runners']],
  ['home', ['throw pillow', 'bath towels', 'scented candle', 'wall art', 'area rug', 'curtains', 'storage baskets']],
  ['kitchen', ['air fryer', 'chef knife', 'coffee maker', 'blender', 'cast iron pan', 'food storage containers', 'stand mixer']],
  ['garden', ['garden hose', 'pruning shears', 'raised bed', 'tomato seeds', 'lawn mower', 'planters', 'compost bin']],
  ['toys', ['lego set', 'board game', 'jigsaw puzzle', 'doll house', 'rc car', 'plush toy', 'building blocks']],
  ['sports', ['yoga mat', 'dumbbells', 'tennis racket', 'football', 'bike helmet', 'resistance bands', 'jump rope']],
  ['beauty', ['moisturizer', 'lipstick', 'sunscreen', 'shampoo', 'perfume', 'face serum', 'nail polish']],
  ['health', ['vitamin d', 'protein powder', 'first aid kit', 'thermometer', 'fish oil', 'blood pressure monitor']],
  ['grocery', ['coffee beans', 'olive oil', 'green tea', 'pasta', 'dark chocolate', 'granola', 'hot sauce']],
  ['pet supplies', ['dog food', 'cat litter', 'dog leash', 'bird feeder', 'aquarium filter', 'cat tree', 'chew toys']],
  ['automotive', ['phone mount', 'tire inflator', 'dash cam', 'car wax', 'seat covers', 'jump starter']],
  ['office', ['ergonomic chair', 'notebook', 'gel pens', 'desk lamp', 'printer paper', 'monitor stand']],
  ['music', ['acoustic guitar', 'vinyl record', 'digital piano', 'drum sticks', 'ukulele', 'guitar strings']],
  ['movies', ['blu-ray', 'box set', 'documentary', 'classic films', 'animated movie', 'criterion collection']],
  ['video games', ['rpg', 'racing game', 'controller', 'gaming headset', 'strategy game', 'console']],
  ['jewelry', ['silver necklace', 'hoop earrings', 'engagement ring', 'charm bracelet', 'pendant']],
  ['watches', ['dive watch', 'automatic watch', 'fitness tracker', 'watch strap', 'chronograph']],
  ['baby', ['stroller', 'diapers', 'baby monitor', 'car seat', 'baby carrier', 'high chair']],
  ['furniture', ['sofa', 'bookshelf', 'standing desk', 'bed frame', 'dining table', 'office chair']],
  ['tools', ['cordless drill', 'screwdriver set', 'tool box', 'step ladder', 'socket set', 'stud finder']],
  ['outdoors', ['camping tent', 'sleeping bag', 'hiking backpack', 'trekking poles', 'headlamp', 'water filter']],
  ['crafts', ['yarn', 'acrylic paint', 'sewing machine', 'sketchbook', 'glue gun', 'embroidery kit']],
  ['travel', ['carry on luggage', 'travel pillow', 'packing cubes', 'passport holder', 'travel adapter']],
  ['appliances', ['washing machine', 'refrigerator', 'robot vacuum', 'dishwasher', 'microwave', 'dehumidifier']],
  ['cameras', ['mirrorless camera', 'tripod', 'prime lens', 'memory card', 'camera bag', 'action camera']],
  ['lighting', ['led bulbs', 'floor lamp', 'string lights', 'smart bulb', 'desk light', 'motion sensor light']],
  ['bags', ['backpack', 'tote bag', 'crossbody bag', 'laptop sleeve', 'duffel bag', 'wallet']],
  ['software', ['antivirus', 'photo editor', 'office suite', 'vpn subscription', 'password manager']],
  ['party supplies', ['balloons', 'birthday candles', 'party favors', 'paper plates', 'banner']]
]
const NAME_MODIFIERS = ['kids', 'vintage', 'outdoor', 'smart', 'eco', 'premium', 'travel', 'mini', 'professional', 'budget', 'luxury', 'handmade']
export const QUERY_FORMS: ReadonlyArray<readonly [string, string]> = [
  ['', ''], ['', ''], ['', ''], ['best ', ''], ['cheap ', ''], ['', ' deals'], ['', ' reviews'],
  ['buy ', ''], ['', ' sale'], ['used ', ''], ['', ' gift'], ['', ' near me'], ['top rated ', ''], ['', ' 2025']
]
export const BRANDS = ['Acme', 'Nordic', 'Zenith', 'Apex', 'Lumen', 'Orbit', 'Summit', 'Vertex', 'Koala', 'Maple', 'Harbor', 'Cobalt', 'Juniper', 'Atlas', 'Pioneer', 'Willow']
export const ADJECTIVES = ['Classic', 'Pro', 'Ultra', 'Compact', 'Deluxe', 'Essential', 'Lite', 'Max', 'Eco', 'Prime', 'Signature', 'Everyday']
export const FIRST = ['Ada', 'Ben', 'Chloe', 'Dev', 'Elena', 'Farid', 'Grace', 'Hiro', 'Ines', 'Jonas', 'Kira', 'Liam', 'Maya', 'Noah', 'Olga', 'Priya', 'Quinn', 'Rosa', 'Sam', 'Tariq', 'Uma', 'Victor', 'Wen', 'Yara', 'Zoe']
export const LAST = ['Smith', 'Garcia', 'Kim', 'Novak', 'Okafor', 'Rossi', 'Schmidt', 'Tanaka', 'Silva', 'Dubois', 'Jensen', 'Kowalski', 'Nguyen', 'Patel', 'Haddad', 'Larsen']

/** C category names with their search terms: the catalogue first, then "modifier base", then "base N". */
export function categoryNames (count: number): Array<{ name: string, terms: readonly string[] }> {
  const out: Array<{ name: string, terms: readonly string[] }> = []
  for (const [name, terms] of CATALOG) {
    if (out.length >= count) return out
    out.push({ name, terms })
  }
  for (const m of NAME_MODIFIERS) {
    for (const [name, terms] of CATALOG) {
      if (out.length >= count) return out
      out.push({ name: `${m} ${name}`, terms: terms.map((t) => `${m} ${t}`) })
    }
  }
  for (let n = 2; out.length < count; n++) {
    for (const [name, terms] of CATALOG) {
      if (out.length >= count) return out
      out.push({ name: `${name} ${n}`, terms })
    }
  }
  return out
}
