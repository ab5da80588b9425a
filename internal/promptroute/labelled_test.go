package promptroute

import "github.com/junctionhq/junction/internal/wire/llm"

// easyPrompts are short factual questions and small chores that a
// cheap model answers well.
var easyPrompts = []string{
	"What is the capital of France?",
	"Who wrote Pride and Prejudice?",
	"How many continents are there?",
	"What year did the Berlin Wall fall?",
	"Translate 'good morning' into Spanish.",
	"What is the boiling point of water in Fahrenheit?",
	"Who painted the Mona Lisa?",
	"What does DNA stand for?",
	"Is a tomato a fruit or a vegetable?",
	"What's the tallest mountain in Africa?",
	"Give me a synonym for 'happy'.",
	"What is the chemical symbol for gold?",
	"How many legs does a spider have?",
	"What language is spoken in Brazil?",
	"What is 2+2?",
	"When is Bastille Day celebrated?",
	"What's the plural of 'cactus'?",
	"Name the largest planet in our solar system.",
	"Who was the first person to walk on the moon?",
	"What time zone is Tokyo in?",
	"Define the word 'ephemeral'.",
	"What currency does Japan use?",
	"Spell 'necessary' backwards.",
	"What is the square root of 81?",
	"Which ocean is the largest?",
	"Summarize in one sentence: the meeting moved from Tuesday to Thursday because the CEO is travelling.",
	"Write a haiku about autumn.",
	"What is Python?",
	"How do I say thank you in Japanese?",
	"What's the difference between weather and climate? Answer briefly.",
}

// hardPrompts are multi-step maths, code and long-output tasks that a
// cheap model often gets wrong or cuts short.
var hardPrompts = []string{
	"Prove that the square root of 2 is irrational, then generalize the argument to show that the square root of any prime is irrational.",
	"Write a Python function that parses a CSV file of transactions, groups them by merchant, and computes the monthly total and the median transaction per merchant. Then write pytest unit tests covering empty files, malformed rows and multi-currency data.",
	"Implement a thread-safe LRU cache in Go with generics. Explain the time complexity of Get and Put, and write table-driven tests for eviction order.",
	"Compute the integral of x^2 e^{-x} from 0 to infinity step by step, and verify the result using the Gamma function.",
	"Write a detailed 2000-word essay comparing the economic policies of Keynes and Hayek, with sections on inflation, unemployment and the role of central banks.",
	"Solve the system: 3x + 2y - z = 1, 2x - 2y + 4z = -2, -x + 0.5y - z = 0. Show each elimination step and then check the solution.",
	"Design a rate limiter for a distributed API gateway handling 1M requests per second. Compare token bucket and sliding window approaches, discuss the trade-offs for consistency across replicas, and provide Go code for the core algorithm.",
	"Here is my code:\n```js\nfunction debounce(fn, ms) {\n  let t;\n  return (...args) => {\n    clearTimeout(t);\n    t = setTimeout(() => fn(...args), ms);\n  };\n}\n```\nWhy does it lose `this` when used as a method? Fix it and write tests for both arrow and regular functions.",
	"Find all real solutions of x^4 - 5x^2 + 4 = 0, then prove that the polynomial has no other roots, and sketch its graph.",
	"Write a comprehensive technical report (about 3000 words) on migrating a monolithic Rails application to microservices:\n1. assessment\n2. strangler-fig strategy\n3. data migration\n4. testing\n5. rollout plan",
	"Derive the closed form of the Fibonacci sequence using generating functions, then prove it by induction.",
	"Refactor this SQL query to avoid the N+1 problem and explain the execution plan:\n```sql\nSELECT * FROM orders o WHERE o.customer_id IN (SELECT id FROM customers WHERE region = 'EU');\n```\nThen add the indexes you would create and justify each.",
	"Let A be the 3x3 matrix [[2,1,0],[1,2,1],[0,1,2]]. Compute its eigenvalues and eigenvectors, diagonalize it, and use the result to compute A^10.",
	"Write a recursive descent parser in Rust for arithmetic expressions with +, -, *, / and parentheses, handling operator precedence. Include error reporting with line and column numbers and unit tests.",
	"Explain step by step how the RSA algorithm works, prove why decryption recovers the message using Euler's theorem, and work through an example with p = 61 and q = 53.",
	"Write a 10-page tutorial on building a REST API with Django, covering models, serializers, authentication, pagination and deployment.",
	"Given an array of integers, find the length of the longest increasing subsequence in O(n log n). Explain the algorithm, prove its correctness, and implement it in C++.",
	"Analyze the following logs and find the root cause of the deadlock:\n```\ngoroutine 12 [semacquire]:\nsync.(*Mutex).Lock(...)\nmain.(*Store).Put(0xc000010000)\ngoroutine 13 [chan send]:\nmain.worker(...)\n```\nThen propose a fix and explain how to prevent it with lock ordering.",
	"A bag contains 5 red, 7 blue and 8 green balls. Three balls are drawn without replacement. Compute the probability that all three are different colors, then compute the expected number of red balls drawn, and verify by simulation in Python.",
	"Write a detailed business plan for a coffee subscription startup, including market analysis, pricing strategy, a 3-year financial projection and a marketing plan, in about 2500 words.",
	"Create a Kubernetes deployment with a horizontal pod autoscaler, a readiness probe and a PodDisruptionBudget for a Node.js service. Then explain how rolling updates interact with the PDB and what happens when a node drains.",
	"Prove that every continuous function on a closed interval [a, b] is bounded and attains its maximum. State every theorem you use.",
	"Implement Dijkstra's algorithm with a binary heap in Java, analyze its complexity, and then modify it to return the k shortest paths.",
	"Write a thorough literature review of transformer efficiency techniques (sparse attention, linear attention, quantization, distillation), comparing their trade-offs, in 4000 words.",
	"Optimize this Python function, which is O(n^2), to O(n log n) or better, and explain why your version is correct:\n```python\ndef count_pairs(nums, k):\n    c = 0\n    for i in range(len(nums)):\n        for j in range(i+1, len(nums)):\n            if nums[i] + nums[j] == k:\n                c += 1\n    return c\n```",
}

func userRequest(text string) *llm.Request {
	return &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: text}}}}}
}
