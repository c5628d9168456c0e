package cairn;

import java.util.List;
import java.util.Map;

/**
 * A runnable tour of the client, as a plugin would use it:
 * java -cp out cairn.Example http://127.0.0.1:7420 GAME_KEY HUNT_ID
 * Prints one line per step and "example ok" at the end.
 */
public final class Example {
    @SuppressWarnings("unchecked")
    public static void main(String[] args) throws Exception {
        String url = args.length > 0 ? args[0] : "http://127.0.0.1:7420";
        String key = args.length > 1 ? args[1] : System.getenv("CAIRN_GAME_KEY");
        String hunt = args.length > 2 ? args[2] : "friday-night";
        CairnClient cairn = new CairnClient(url, key);

        System.out.println("hunts: " + cairn.hunts().size());

        // Every tick: send all players' positions, show a toast on proximity.enter.
        Map<String, Object> tick = cairn.positions("overworld", List.of(new CairnClient.Position("Steve", 0, 70, 0, true)));
        System.out.println("proximity events: " + ((List<Object>) tick.get("events")).size());

        // A player asks for a hint.
        Map<String, Object> hint = cairn.hint(hunt, "Steve", new int[] {0, 70, 0});
        System.out.println("hint: " + Json.write(hint.get("hint")));

        // A player digs. The request id makes a retry after a timeout safe.
        Map<String, Object> dig = cairn.dig(hunt, "Steve", new int[] {0, 70, 0}, new int[] {1, 69, 0}, "Steve-dig-1");
        System.out.println("dig: " + dig.get("result") + " (" + dig.get("temperature") + ")");

        // Deliver every pending reward in game, then ack it. Safe to repeat after a crash.
        for (Map<String, Object> g : cairn.grants("Steve")) {
            System.out.println("deliver " + Json.write(g.get("items")));
            cairn.ack((String) g.get("grant_id"));
        }

        // Errors carry the stable code.
        try {
            cairn.dig("no-such-hunt", "Steve", new int[] {0, 70, 0}, new int[] {0, 69, 0}, "x");
        } catch (CairnClient.CairnException e) {
            System.out.println("error code: " + e.code);
        }
        System.out.println("example ok");
    }
}
